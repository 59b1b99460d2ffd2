"""Signed requests on the service: accepted, and every refusal path."""

from __future__ import annotations

import hmac
import threading
import time
from typing import Any

import pytest
from auth_helpers import KEY_ID, OTHER_SECRET, SECRET, make_service, refusal, signed, signed_service, wsgi_call
from pyservice import ApiError, Client, Service
from pyservice.testing import client_for
from pyservice_auth import Auth, AuthUnavailable, NonceStore, RedisNonceStore, Unauthenticated

UNAUTHENTICATED = ("Unauthenticated", "authentication failed")


def client_of(service: Service, **auth: Any) -> Client:
    api = dict(service.api.raw)
    api["plugins"] = {"auth": {"mode": "signed", "key_id": KEY_ID, "secret": SECRET, **auth}}
    return client_for(service, api, available_plugins=[Auth])


def test_a_call_signed_by_the_client_plugin_is_accepted_with_its_principal() -> None:
    service = signed_service()
    answer = client_of(service).echo(x=1)
    assert (answer.principal, answer.caller, answer.got) == (KEY_ID, KEY_ID, {"x": 1})


def test_a_request_signed_by_an_independent_implementation_is_accepted() -> None:
    body = b'{"name":"Zo\xc3\xab"}'
    status, answer, _ = wsgi_call(signed_service(), headers=signed(body), body=body)
    assert status == 200
    assert answer["principal"] == KEY_ID
    assert answer["got"] == {"name": "Zoë"}


def test_the_known_answer_vectors_are_accepted_by_the_service() -> None:
    from pyservice_auth import signature_vectors

    for vector in signature_vectors():
        service = make_service(
            {
                "mode": "signed",
                "keys": {vector["key_id"]: vector["secret"]},
                "allow": ["authenticated"],
                "clock": lambda vector=vector: vector["timestamp"] + 1.0,
            },
            operations=[vector["path"].rsplit("/", 1)[1]],
            version=vector["path"].split("/")[2],
        )
        headers = {**vector["headers"], "Authorization": vector["authorization"]}
        body = vector["body"].encode("utf-8")
        status, answer, _ = wsgi_call(service, headers=headers, body=body, path=vector["path"], query=vector["query"])
        # An empty body passes authentication, then fails decoding: it is not a JSON object.
        assert status == (200 if body else 400), (vector["name"], answer)
        assert "principal" in answer if body else answer["error"]["name"] == "MalformedJSON"


def test_a_call_without_credentials_is_refused_with_a_challenge() -> None:
    status, answer, headers = wsgi_call(signed_service())
    assert (status, refusal(answer)) == (401, UNAUTHENTICATED)
    assert headers["WWW-Authenticate"] == "PYSERVICE-HMAC-SHA256"


def test_the_client_raises_unauthenticated_by_name() -> None:
    service = signed_service()
    client = client_of(service, secret=OTHER_SECRET)
    with pytest.raises(Unauthenticated, match="authentication failed"):
        client.other()


@pytest.mark.parametrize(
    "header",
    [
        "PYSERVICE-HMAC-SHA256",
        "PYSERVICE-HMAC-SHA256 key=svc-a, ts=1, nonce=short, sig=" + "0" * 64,
        "PYSERVICE-HMAC-SHA256 ts=1, key=svc-a, nonce=" + "n" * 20 + ", sig=" + "0" * 64,
        "PYSERVICE-HMAC-SHA256 key=svc-a,ts=1,nonce=" + "n" * 20 + ",sig=" + "0" * 64,
        "PYSERVICE-HMAC-SHA256 key=svc-a, ts=1, nonce=" + "n" * 20 + ", sig=" + "A" * 64,
        "PYSERVICE-HMAC-SHA256 key=svc-a, ts=-1, nonce=" + "n" * 20 + ", sig=" + "0" * 64,
        "Basic dXNlcjpwYXNz",
    ],
    ids=["no-params", "short-nonce", "order", "no-spaces", "uppercase-sig", "negative-ts", "other-scheme"],
)
def test_a_malformed_signature_header_is_refused(header: str) -> None:
    status, answer, _ = wsgi_call(signed_service(), headers={"Authorization": header})
    assert (status, refusal(answer)) == (401, UNAUTHENTICATED)


@pytest.mark.parametrize("offset", [-301, 301, -100_000, 10**9])
def test_a_timestamp_outside_the_window_is_refused(offset: int) -> None:
    headers = signed(timestamp=int(time.time()) + offset)
    status, answer, _ = wsgi_call(signed_service(), headers=headers)
    assert (status, refusal(answer)) == (401, UNAUTHENTICATED)


def test_a_timestamp_at_the_edge_of_the_window_is_accepted() -> None:
    now = 1_800_000_000
    service = signed_service(clock=lambda: float(now))
    for offset in (-300, 300):
        status, _, _ = wsgi_call(service, headers=signed(timestamp=now + offset))
        assert status == 200


def test_an_unknown_key_id_is_refused() -> None:
    status, answer, _ = wsgi_call(signed_service(), headers=signed(key_id="svc-unknown"))
    assert (status, refusal(answer)) == (401, UNAUTHENTICATED)


def test_a_signature_made_with_another_secret_is_refused() -> None:
    status, answer, _ = wsgi_call(signed_service(), headers=signed(secret=OTHER_SECRET))
    assert (status, refusal(answer)) == (401, UNAUTHENTICATED)


def test_an_expired_signing_key_is_refused_while_its_replacement_is_accepted() -> None:
    now = time.time()
    keys = {
        "old": {"secret": SECRET, "principal": "svc-a", "expires": now - 1},
        "new": {"secret": OTHER_SECRET, "principal": "svc-a", "expires": "2999-01-01T00:00:00+00:00"},
    }
    service = make_service({"mode": "signed", "keys": keys, "allow": ["authenticated"]})
    assert wsgi_call(service, headers=signed(key_id="old"))[0] == 401
    status, answer, _ = wsgi_call(service, headers=signed(key_id="new", secret=OTHER_SECRET))
    assert (status, answer["principal"]) == (200, "svc-a")


def test_two_keys_of_one_principal_are_both_accepted_during_a_rotation() -> None:
    keys = {"2024": {"secret": SECRET, "principal": "svc-a"}, "2025": {"secret": OTHER_SECRET, "principal": "svc-a"}}
    service = make_service({"mode": "signed", "keys": keys, "allow": ["principal:svc-a"]})
    assert wsgi_call(service, headers=signed(key_id="2024"))[0] == 200
    assert wsgi_call(service, headers=signed(key_id="2025", secret=OTHER_SECRET))[0] == 200


def test_a_replayed_request_is_refused() -> None:
    service = signed_service()
    headers = signed(b'{"a":1}')
    assert wsgi_call(service, headers=headers, body=b'{"a":1}')[0] == 200
    status, answer, _ = wsgi_call(service, headers=headers, body=b'{"a":1}')
    assert (status, refusal(answer)) == (401, UNAUTHENTICATED)


def test_the_same_nonce_under_another_key_is_not_a_replay() -> None:
    keys = {"one": SECRET, "two": OTHER_SECRET}
    service = make_service({"mode": "signed", "keys": keys, "allow": ["authenticated"]})
    assert wsgi_call(service, headers=signed(key_id="one", nonce="shared-nonce-0001"))[0] == 200
    assert wsgi_call(service, headers=signed(key_id="two", secret=OTHER_SECRET, nonce="shared-nonce-0001"))[0] == 200


def test_a_refused_signature_does_not_burn_the_nonce() -> None:
    # The nonce is recorded only after the MAC matched: a forger cannot block a real request's nonce.
    service = signed_service()
    nonce = "nonce-of-the-real-client"
    wsgi_call(service, headers=signed(secret=OTHER_SECRET, nonce=nonce))
    assert wsgi_call(service, headers=signed(nonce=nonce))[0] == 200


# -- one tamper test per signed component -------------------------------------------------------------


def _tampered(service: Service, **changes: Any) -> tuple[int, dict[str, Any]]:
    status, answer, _ = wsgi_call(service, **changes)
    return status, answer


def test_tampering_with_the_method_is_refused() -> None:
    headers = signed(method="PUT")  # signed for another method, sent with POST
    assert _tampered(signed_service(), headers=headers)[0] == 401


def test_tampering_with_the_path_is_refused() -> None:
    headers = signed(path="/api/v1/echo")
    assert _tampered(signed_service(), headers=headers, path="/api/v1/other")[0] == 401


def test_adding_a_query_string_is_refused() -> None:
    assert _tampered(signed_service(), headers=signed(), query="x=1")[0] == 401


def test_tampering_with_the_content_type_is_refused() -> None:
    headers = {**signed(), "Content-Type": "application/json; charset=utf-8"}
    assert _tampered(signed_service(), headers=headers)[0] == 401


def test_adding_an_idempotency_key_is_refused() -> None:
    headers = {**signed(), "Idempotency-Key": "attacker-chosen"}
    assert _tampered(signed_service(), headers=headers)[0] == 401


def test_changing_the_idempotency_key_is_refused() -> None:
    headers = {**signed(headers={"Content-Type": "application/json", "Idempotency-Key": "a"}), "Idempotency-Key": "b"}
    assert _tampered(signed_service(), headers=headers)[0] == 401


def test_tampering_with_the_deadline_header_is_refused() -> None:
    original = signed(headers={"Content-Type": "application/json", "Pyservice-Timeout": "10"})
    assert _tampered(signed_service(), headers={**original, "Pyservice-Timeout": "0.001"})[0] == 401


def test_tampering_with_the_timestamp_is_refused() -> None:
    headers = signed()
    timestamp = headers["Authorization"].split("ts=")[1].split(",")[0]
    headers["Authorization"] = headers["Authorization"].replace(f"ts={timestamp}", f"ts={int(timestamp) - 1}")
    assert _tampered(signed_service(), headers=headers)[0] == 401


def test_a_timestamp_respelled_with_a_leading_zero_is_refused() -> None:
    headers = signed()
    headers["Authorization"] = headers["Authorization"].replace("ts=", "ts=0")
    assert _tampered(signed_service(), headers=headers)[0] == 401


def test_tampering_with_the_nonce_is_refused() -> None:
    headers = signed(nonce="original-nonce-0001")
    headers["Authorization"] = headers["Authorization"].replace("original-nonce-0001", "original-nonce-0002")
    assert _tampered(signed_service(), headers=headers)[0] == 401


def test_tampering_with_the_key_id_is_refused() -> None:
    keys = {"one": SECRET, "two": SECRET}  # even with the same secret: the key id is signed
    service = make_service({"mode": "signed", "keys": keys, "allow": ["authenticated"]})
    headers = signed(key_id="one")
    headers["Authorization"] = headers["Authorization"].replace("key=one", "key=two")
    assert _tampered(service, headers=headers)[0] == 401


def test_tampering_with_the_body_is_refused() -> None:
    headers = signed(b'{"amount":1}')
    assert _tampered(signed_service(), headers=headers, body=b'{"amount":9}')[0] == 401


def test_tampering_with_the_signature_is_refused() -> None:
    headers = signed()
    sig = headers["Authorization"][-64:]
    flipped = ("1" if sig[0] == "0" else "0") + sig[1:]
    headers["Authorization"] = headers["Authorization"][:-64] + flipped
    assert _tampered(signed_service(), headers=headers)[0] == 401


def test_every_refusal_answers_the_same_error() -> None:
    service = signed_service()
    answers = [
        wsgi_call(service)[1],
        wsgi_call(service, headers={"Authorization": "PYSERVICE-HMAC-SHA256 junk"})[1],
        wsgi_call(service, headers=signed(timestamp=1))[1],
        wsgi_call(service, headers=signed(key_id="nobody"))[1],
        wsgi_call(service, headers=signed(secret=OTHER_SECRET))[1],
        wsgi_call(service, headers=signed(b"{}"), body=b'{"x":1}')[1],
    ]
    assert {refusal(answer) for answer in answers} == {UNAUTHENTICATED}
    assert {str(answer["error"]["args"]) for answer in answers} == {"['authentication failed']"}


# -- the client ----------------------------------------------------------------------------------------


def test_each_retry_is_signed_again_with_a_fresh_nonce_and_timestamp() -> None:
    times = iter([1_800_000_000.0, 1_800_000_003.0])
    service = make_service(
        {"mode": "signed", "keys": {KEY_ID: SECRET}, "allow": ["authenticated"], "clock": lambda: 1_800_000_001.0},
        exceptions={"Busy": {"status": 503}},
    )
    seen: list[str] = []

    @service.plugin("request")
    def busy_once(context: Any) -> None:
        seen.append(context.headers["Authorization"])
        if len(seen) == 1:
            raise service.exceptions.Busy("try again")
        context.process_request()

    client = client_of(service, clock=lambda: next(times))
    assert client.echo().principal == KEY_ID
    assert len(seen) == 2
    first, second = (dict(part.split("=", 1) for part in header.split(" ", 1)[1].split(", ")) for header in seen)
    assert first["nonce"] != second["nonce"]
    assert (first["ts"], second["ts"]) == ("1800000000", "1800000003")


def test_the_client_replaces_an_authorization_header_given_in_another_case() -> None:
    service = signed_service()
    answer = client_of(service).call("echo", {}, headers={"authorization": "Bearer nonsense.x.y"})
    assert answer.principal == KEY_ID


def test_the_client_reads_its_secret_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_AUTH_SECRET", SECRET)
    service = signed_service()
    assert client_of(service, secret=None, secret_env="TEST_AUTH_SECRET").echo().principal == KEY_ID


def test_the_service_reads_a_signing_secret_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_AUTH_SECRET", SECRET)
    service = signed_service(keys={KEY_ID: {"secret_env": "TEST_AUTH_SECRET", "roles": ["writer"]}})
    status, answer, _ = wsgi_call(service, headers=signed())
    assert (status, answer["roles"]) == (200, ["writer"])


# -- the nonce store -----------------------------------------------------------------------------------


def test_an_unreachable_redis_nonce_store_refuses_calls_with_auth_unavailable() -> None:
    from pyservice.testing import free_port

    url = f"redis://127.0.0.1:{free_port()}/0"
    service = signed_service(nonce_store="redis", redis_url=url, redis_timeout=0.2)
    status, answer, _ = wsgi_call(service, headers=signed())
    assert (status, refusal(answer)) == (503, ("AuthUnavailable", "authentication is unavailable"))
    with pytest.raises(AuthUnavailable):
        client_of(service).other()


def test_a_failing_nonce_store_is_not_asked_before_the_signature_matched() -> None:
    class Failing(NonceStore):
        shared = True
        calls = 0

        def add(self, key: str, ttl: float) -> bool:
            Failing.calls += 1
            raise __import__("pyservice_auth").NonceStoreUnavailable("down")

    service = signed_service(nonce_store=Failing())
    assert wsgi_call(service, headers=signed(secret=OTHER_SECRET))[0] == 401
    assert Failing.calls == 0
    assert wsgi_call(service, headers=signed())[0] == 503


def test_nonces_are_kept_twice_the_window_by_default() -> None:
    recorded: list[tuple[str, float]] = []

    class Recording(NonceStore):
        shared = True

        def add(self, key: str, ttl: float) -> bool:
            recorded.append((key, ttl))
            return True

    service = signed_service(nonce_store=Recording(), max_skew=120)
    wsgi_call(service, headers=signed(nonce="nonce-recorded-0001"))
    assert recorded == [(f"{KEY_ID}:nonce-recorded-0001", 240.0)]


def test_a_nonce_ttl_shorter_than_twice_the_window_is_refused_at_start_up() -> None:
    with pytest.raises(ApiError, match=r"nonce_ttl.*at least twice max_skew"):
        signed_service(max_skew=300, nonce_ttl=599)


def test_the_redis_store_records_a_nonce_once_with_its_ttl(redis_url: str, redis_prefix: str) -> None:
    import redis

    store = RedisNonceStore(redis_url, prefix=redis_prefix)
    try:
        assert store.add("svc-a:n1", 600) is True
        assert store.add("svc-a:n1", 600) is False
        ttl = redis.Redis.from_url(redis_url).pttl(redis_prefix + "svc-a:n1")
        assert 590_000 < ttl <= 600_000
    finally:
        store.close()


def test_concurrent_replays_are_accepted_once_with_redis(redis_url: str, redis_prefix: str) -> None:
    service = signed_service(nonce_store="redis", redis_url=redis_url, redis_prefix=redis_prefix)
    headers = signed()
    statuses: list[int] = []
    barrier = threading.Barrier(8)

    def send() -> None:
        barrier.wait(timeout=10)
        statuses.append(wsgi_call(service, headers=headers)[0])

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(statuses) == [200] + [401] * 7


def test_a_memory_nonce_store_is_refused_under_several_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYSERVICE_WORKERS", "2")
    with pytest.raises(ApiError, match=r"nonce_store.*another of the 2 worker processes"):
        signed_service()


def test_a_memory_nonce_store_refuses_calls_in_a_multiprocess_server() -> None:
    status, answer, _ = wsgi_call(signed_service(), headers=signed(), extra_environ={"wsgi.multiprocess": True})
    assert (status, refusal(answer)[0]) == (503, "AuthUnavailable")


def test_a_full_memory_nonce_store_refuses_calls_rather_than_forget() -> None:
    service = signed_service(max_nonces=2)
    assert [wsgi_call(service, headers=signed())[0] for _ in range(3)] == [200, 200, 503]


def test_the_memory_store_forgets_a_nonce_after_its_ttl() -> None:
    from pyservice_auth import MemoryNonceStore

    now = [0.0]
    store = MemoryNonceStore(clock=lambda: now[0])
    assert store.add("k:n", 10) is True
    now[0] = 9.9
    assert store.add("k:n", 10) is False
    now[0] = 10.0
    assert store.add("k:n", 10) is True
    assert len(store) == 1


# -- constant-time comparison ----------------------------------------------------------------------------


def test_signatures_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[tuple[Any, Any]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    headers = signed(secret=OTHER_SECRET)
    sent = headers["Authorization"][-64:]
    assert wsgi_call(signed_service(), headers=headers)[0] == 401
    assert [b for _, b in compared] == [sent]


def test_an_unknown_key_id_is_compared_against_a_decoy_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[Any] = []
    real = hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: compared.append(b) or real(a, b))
    assert wsgi_call(signed_service(), headers=signed(key_id="nobody"))[0] == 401
    assert len(compared) == 1
