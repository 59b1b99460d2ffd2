"""Calls the items service the way the README shows, and says what each call did."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pyservice

api = pyservice.load_api(Path(__file__).with_name("api.json"))


def main(port: int | None = None) -> None:
    endpoint = dict(api["endpoint"], port=port) if port else api["endpoint"]
    # The same description, so the same plugins: each does its client side, if it has
    # one. The client's access log goes to stderr, and only for warnings and errors,
    # to keep the story below readable; the server's log is shown at the end.
    plugins = {**api["plugins"], "logging": {**api["plugins"]["logging"], "output": "stderr", "level": "warning"}}
    client_api = {**api, "endpoint": endpoint, "plugins": plugins}
    with pyservice.Client(**client_api) as client:
        seen: dict[str, str | None] = {}

        @client.plugin("operation", operations=["get_item"])
        def cache_status(request, response, context):
            # The service says in Cache-Status what its cache did (examples/items/service.py).
            context.process_request()
            answer = context.http_response
            seen["cache"] = answer.headers.get("Cache-Status") if answer is not None else None

        @client.plugin("attempt", operations=["put_item"])
        def remember_retry_after(context):
            context.process_request()
            answer = context.http_response
            seen["retry_after"] = answer.headers.get("Retry-After") if answer is not None else None

        def patiently(call, **fields):
            # A 429 is handled as docs/packages/throttle.md says: wait Retry-After, then send it again. The
            # throttle's own client does that by itself, within the call's timeout; api.json turns that off
            # for put_item (retries: 0), to show the refusal at the end.
            for _ in range(3):
                try:
                    return call(**fields)
                except client.exceptions.RequestThrottled:
                    wait = int(seen.get("retry_after") or 1)
                    print(
                        f"put_item  .. 429 RequestThrottled: this caller's 5 puts a minute are spent (an earlier"
                        f" run's count too, where the throttle is on Redis); waiting Retry-After ({wait} s)",
                        flush=True,
                    )
                    time.sleep(wait)
            return call(**fields)

        item = {"name": "teapot", "colour": "blue"}
        created = patiently(client.put_item, item=item)
        print(f"put_item  -> id {created.id}")

        started = time.perf_counter()
        fetched = client.get_item(id=created.id)
        first = time.perf_counter() - started
        assert fetched.item == item
        print(f"get_item  -> {fetched.item}  ({_cache(seen.get('cache'))}, {first * 1000:.1f} ms)")
        started = time.perf_counter()
        client.get_item(id=created.id)
        again = time.perf_counter() - started
        outcome = _cache(seen.get("cache"))
        print(f"get_item  -> again: {outcome}, {again * 1000:.1f} ms")
        if outcome == "cache miss" and os.environ.get("ITEMS_BACKENDS") != "shared":
            print(
                "             (each of the 2 workers has a memory cache of its own, and this call reached the"
                " other one; ITEMS_BACKENDS=shared puts one cache on Redis for both)"
            )

        try:
            client.get_item(id=10**6)
        except client.exceptions.DoesNotExist as exc:
            print(f"get_item  -> raised DoesNotExist: {exc}")

        try:
            patiently(client.put_item)
        except client.exceptions.ItemRequired as exc:
            print(f"put_item  -> raised ItemRequired: {exc}")

        # The same description without the auth plugin: no API key is sent.
        others = {name: config for name, config in client_api["plugins"].items() if name != "auth"}
        anonymous_api = {**client_api, "plugins": others, "exceptions": {**api["exceptions"], "Unauthenticated": {}}}
        with pyservice.Client(**anonymous_api) as anonymous:
            try:
                anonymous.get_item(id=created.id)
            except anonymous.exceptions.Unauthenticated as exc:
                print(f"get_item  -> without the API key, raised Unauthenticated: {exc}")

        # Not waiting this time: the refusal reaches the caller.
        try:
            for n in range(10):
                client.put_item(item={"name": f"cup {n}"})
        except client.exceptions.RequestThrottled:
            print(f"put_item  -> raised RequestThrottled after {n} more puts: the limit is 5 a minute")


def _cache(status: str | None) -> str:
    if status is None:
        return "no Cache-Status header"
    return "cache hit" if status.endswith("; hit") else "cache miss"


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else None)
