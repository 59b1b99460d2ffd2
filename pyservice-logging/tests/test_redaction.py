from __future__ import annotations

import json
import string

import pyservice
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyservice_logging import Redactor
from pyservice_logging._output import JSONRenderer
from pyservice_logging._redaction import MAX_DEPTH, TRUNCATED

from .conftest import PLUGINS, client, make_api, make_service, wsgi_post

CARD = "4111 1111 1111 1111"


@pytest.mark.parametrize(
    "key",
    ["password", "Password", "PASSWORD", "user_password", "apiKey", "API-Key", "x_api_key", "X-API-KEY",
     "Authorization", "authorization", "Proxy-Authorization", "Cookie", "set_cookie", "access_token",
     "refreshToken", "client_secret", "X-Hub-Signature-256", "signature", "private_key"],
)  # fmt: skip
def test_default_patterns_mask_every_spelling(key):
    assert Redactor().redact({key: "value"}) == {key: "[REDACTED]"}


@pytest.mark.parametrize("key", ["name", "id", "tokens_used", "status", "keyboard"])
def test_ordinary_keys_are_kept(key):
    assert Redactor().redact({key: "value"}) == {key: "value"}


def test_configured_glob_matches_regardless_of_spelling():
    redactor = Redactor(["*_pin", "ssn"])
    assert redactor.redact({"card_pin": 1, "cardPin": 2, "CARD-PIN": 3, "SSN": 4, "pinned": 5}) == {
        "card_pin": "[REDACTED]",
        "cardPin": "[REDACTED]",
        "CARD-PIN": "[REDACTED]",
        "SSN": "[REDACTED]",
        "pinned": 5,
    }


def test_card_numbers_are_masked_in_strings_and_integers():
    redactor = Redactor()
    assert redactor.redact(f"paid with {CARD}, thanks") == "paid with [REDACTED], thanks"
    assert redactor.redact("4111-1111-1111-1111") == "[REDACTED]"
    assert redactor.redact(4111111111111111) == "[REDACTED]"


def test_digit_runs_failing_luhn_are_kept():
    redactor = Redactor()
    assert redactor.redact("order 4111111111111112") == "order 4111111111111112"
    assert redactor.redact(4111111111111112) == 4111111111111112
    assert redactor.redact("phone 555 1234") == "phone 555 1234"


def test_card_numbers_can_be_left_alone():
    assert Redactor(card_numbers=False).redact(CARD) == CARD


def test_nested_structures_are_walked_and_not_changed_in_place():
    payload = {"user": {"profile": [{"api_key": "k"}, ({"Token": "t"},)], "name": "ann"}}
    redacted = Redactor().redact(payload)
    assert redacted == {"user": {"profile": [{"api_key": "[REDACTED]"}, [{"Token": "[REDACTED]"}]], "name": "ann"}}
    assert payload["user"]["profile"][0] == {"api_key": "k"}


def test_a_secret_key_masks_a_whole_structure():
    assert Redactor().redact({"credentials": {"user": "u", "pw": "p"}}) == {"credentials": "[REDACTED]"}


def test_card_numbers_as_dict_keys_are_masked():
    redacted = Redactor().redact({CARD: 1, "4111111111111111": 2, 4111111111111111: 3, "name": 4})
    assert redacted == {"[REDACTED]": 1, "[REDACTED]#2": 2, "[REDACTED]#3": 3, "name": 4}


def test_a_key_with_a_card_number_inside_keeps_the_rest_of_its_text():
    assert Redactor().redact({f"paid {CARD}": "ok"}) == {"paid [REDACTED]": "ok"}


def test_card_numbers_as_floats_are_masked():
    redactor = Redactor()
    assert redactor.redact([4111111111111111.0, 5555555555554444.0, -4111111111111111.0]) == ["[REDACTED]"] * 3
    assert redactor.redact({4111111111111111.0: "key"}) == {"[REDACTED]": "key"}


def test_floats_that_are_not_card_numbers_are_kept():
    assert Redactor().redact([1.5, 4111111111111112.0, 1e300, float("inf")]) == [
        1.5,
        4111111111111112.0,
        1e300,
        float("inf"),
    ]


def test_the_processor_masks_top_level_card_keys_and_floats_in_order():
    event = {"event": "paid", CARD: "v", "amount": 4111111111111111.0, "ok": 1.5}
    assert list(Redactor()(None, "info", event).items()) == [
        ("event", "paid"),
        ("[REDACTED]", "v"),
        ("amount", "[REDACTED]"),
        ("ok", 1.5),
    ]


def test_nesting_deeper_than_the_limit_is_truncated():
    deep: object = "leaf"
    for _ in range(MAX_DEPTH + 5):
        deep = [deep]
    redacted = Redactor().redact(deep)
    for _ in range(MAX_DEPTH):
        assert isinstance(redacted, list)
        redacted = redacted[0]
    assert redacted == TRUNCATED


@pytest.mark.parametrize("depth", [500, 1000, 5000])
def test_redacting_and_rendering_any_depth_never_raises(depth):
    deep: object = {"card": CARD}
    for _ in range(depth):
        deep = {"down": [deep]}
    line = JSONRenderer(Redactor())(None, "info", {"event": "deep", "payload": deep})
    assert TRUNCATED.encode() in line


@pytest.mark.parametrize("order", [("logging", "redact"), ("redact", "logging")])
def test_redact_fields_reach_the_logs_whatever_the_plugin_order(lines, order):
    plugins = {name: {"fields": ["pin"]} if name == "redact" else {} for name in order}
    service = pyservice.Service(available_plugins=PLUGINS, **make_api(plugins))

    @service.operation("put_item")
    def put_item(request, response, context):
        context.log.info("stored", pin="1234", nested={"PIN": "5678"})

    wsgi_post(service, "/api/v1/put_item", b"{}")
    [event] = [event for event in lines.events() if event["event"] == "stored"]
    assert event["pin"] == "[REDACTED]"
    assert event["nested"] == {"PIN": "[REDACTED]"}


def test_logged_headers_mask_authorization_cookie_and_api_key(lines):
    service = make_service(make_api({"logging": {"log_headers": True}}))
    wsgi_post(
        service,
        "/api/v1/get_item",
        b'{"id": "7"}',
        {"Authorization": "Bearer abc", "Cookie": "sid=xyz", "X-Api-Key": "k3y", "X-Signature": "s1g", "Accept": "a/b"},
    )
    text = lines.read()
    for secret in ("Bearer abc", "sid=xyz", "k3y", "s1g"):
        assert secret not in text
    [event] = [event for event in lines.events() if event["event"] == "call"]
    assert event["headers"]["Accept"] == "a/b"
    assert event["headers"]["Authorization"] == "[REDACTED]"


def test_bodies_are_left_out_by_default(lines):
    service = make_service(make_api())
    wsgi_post(service, "/api/v1/put_item", b'{"item": "teapot-123"}')
    assert "teapot-123" not in lines.read()


def test_bodies_when_on_are_redacted_then_truncated(lines):
    service = make_service(make_api({"logging": {"log_bodies": True, "body_limit": 40}}))
    body = json.dumps({"item": {"password": "hunter2-" * 10, "name": "teapot", "notes": "n" * 100}}).encode()
    wsgi_post(service, "/api/v1/put_item", body)
    [event] = lines.calls("service")
    assert "hunter2" not in lines.read()
    # Redacted first: the mask, not a cut-off secret, is what survives truncation.
    assert event["request"].startswith('{"item":{"password":"[REDACTED]"')
    assert event["request"].endswith("...[truncated]")
    assert len(event["request"]) == 40 + len("...[truncated]")


def test_bodies_on_for_one_operation_only(lines):
    api = make_api()
    api["operations"]["put_item"] = {"plugins": {"logging": {"log_bodies": True}}}
    service = make_service(api)
    wsgi_post(service, "/api/v1/put_item", b'{"item": "kettle"}')
    wsgi_post(service, "/api/v1/get_item", b'{"id": "cup"}')
    put, get = lines.calls("service")
    assert json.loads(put["request"]) == {"item": "kettle"}
    assert json.loads(put["response"]) == {"id": "1", "echo": "kettle"}
    assert "request" not in get


def test_redact_removes_fields_from_responses_of_named_operations(lines):
    api = make_api({"redact": {}, "logging": {}})
    api["operations"]["login"] = {"plugins": {"redact": {"remove": ["password_hash", "*_secret", "apiToken"]}}}
    service = make_service(api)
    caller = client(service)
    answer = caller.login(user="ann")
    assert answer == {"user": {"name": "ann", "profile": {}}}


def test_redact_leaves_other_operations_alone():
    api = make_api({"redact": {"remove": []}})
    api["operations"]["login"] = {"plugins": {"redact": {"remove": ["password_hash"]}}}
    service = pyservice.Service(available_plugins=PLUGINS, **api)
    stored = {"password_hash": "kept in the store"}

    @service.operation("get_item")
    def get_item(request, response, context):
        response.item = stored

    assert client(service).get_item(id="1").item == {"password_hash": "kept in the store"}


def test_redact_never_changes_the_applications_objects():
    api = make_api({"redact": {"remove": ["password_hash"]}})
    service = pyservice.Service(available_plugins=PLUGINS, **api)
    stored = {"user": {"name": "ann", "password_hash": "x"}}

    @service.operation("get_item")
    def get_item(request, response, context):
        response.item = stored

    assert client(service).get_item(id="1").item == {"user": {"name": "ann"}}
    assert stored == {"user": {"name": "ann", "password_hash": "x"}}


def test_bad_redact_config_fails_at_start_up():
    with pytest.raises(pyservice.ApiError) as raised:
        make_service(make_api({"logging": {}, "redact": {"fields": ["ok", ""]}}))
    assert raised.value.key == "plugins.redact.fields"


# -- the canary property --------------------------------------------------------

SECRET_KEYS = st.sampled_from(
    ["password", "Password", "user_password", "apiKey", "API_KEY", "x-api-key", "Authorization", "cookie",
     "client_secret", "clientSecret", "db_secret", "refresh_token", "accessToken", "signature", "pin_code"]
)  # fmt: skip
PLAIN_KEYS = st.text(string.ascii_lowercase, min_size=1, max_size=6).filter(
    lambda key: not Redactor(["*_code"]).is_secret(key)
)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-(10**6), 10**6), st.text(max_size=12))
PAYLOADS = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=3).map(tuple),
        st.dictionaries(PLAIN_KEYS, children, max_size=4),
    ),
    max_leaves=20,
)


def _cards() -> st.SearchStrategy[str]:
    # Luhn-valid 16-digit numbers, printed with spaces, dashes or nothing.
    def luhn_complete(digits: list[int]) -> str:
        total = 0
        for position, digit in enumerate(reversed(digits)):
            value = digit * 2 if position % 2 == 0 else digit
            total += value - 9 if value > 9 else value
        check = (10 - total % 10) % 10
        return "".join(map(str, [*digits, check]))

    numbers = st.lists(st.integers(0, 9), min_size=15, max_size=15).map(lambda d: luhn_complete([4, *d[1:]]))
    return st.tuples(numbers, st.sampled_from(["", " ", "-"])).map(
        lambda pair: pair[1].join(pair[0][i : i + 4] for i in range(0, 16, 4))
    )


@st.composite
def payload_with_canaries(draw: st.DrawFn) -> tuple[object, list[str]]:
    payload = draw(PAYLOADS)
    canaries: list[str] = []
    for _ in range(draw(st.integers(1, 4))):
        canary = "CANARY" + draw(st.text("0123456789abcdef", min_size=8, max_size=8))
        if draw(st.booleans()):
            value: object = canary
        else:
            value = {"inner": [canary]}
        canaries.append(canary)
        payload = _plant(draw, payload, draw(SECRET_KEYS), value)
    card = draw(_cards())
    canaries.append(card)
    payload = _plant(draw, payload, draw(PLAIN_KEYS), f"x {card} y")
    # A card number as a key, an integer and a float, each somewhere else.
    number = draw(_cards()).replace(" ", "").replace("-", "")
    canaries.append(number)
    where = draw(st.sampled_from(["key", "int", "float"]))
    if where == "key":
        payload = _plant(draw, payload, draw(st.sampled_from([number, f"id {number}"])), draw(SCALARS))
    else:
        payload = _plant(draw, payload, draw(PLAIN_KEYS), int(number) if where == "int" else float(number))
    return payload, canaries


def _plant(draw: st.DrawFn, payload: object, key: str, value: object) -> object:
    """Put ``{key: value}`` at a random depth of ``payload``."""
    if isinstance(payload, dict) and payload and draw(st.booleans()):
        inner = draw(st.sampled_from(sorted(payload)))
        return {**payload, inner: _plant(draw, payload[inner], key, value)}
    if isinstance(payload, (list, tuple)) and payload and draw(st.booleans()):
        index = draw(st.integers(0, len(payload) - 1))
        items = list(payload)
        items[index] = _plant(draw, items[index], key, value)
        return type(payload)(items)
    if isinstance(payload, dict):
        return {**payload, key: value}
    return [payload, {key: value}]


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=payload_with_canaries())
def test_no_canary_reaches_a_rendered_line(lines, case):
    payload, canaries = case
    api = make_api({"redact": {"fields": ["*_code"]}, "logging": {"log_bodies": True, "body_limit": 100000}})
    service = pyservice.Service(available_plugins=PLUGINS, **api)

    @service.operation("put_item")
    def put_item(request, response, context):
        context.log.info("handler", payload=payload)
        response.echo = payload

    client(service).put_item(item=payload, data=payload)
    text = lines.read()
    lines.text = ""
    # The handler's event was written (compared parsed: the renderer's spacing is not the point).
    assert "handler" in [json.loads(line)["event"] for line in text.split("\n") if line.startswith("{")]
    for canary in canaries:
        assert canary not in text
        assert canary.replace(" ", "").replace("-", "") not in text
