"""Calls the items service the way the README shows."""

from __future__ import annotations

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
        item = {"name": "teapot", "colour": "blue"}
        created = client.put_item(item=item)
        print(f"put_item  -> id {created.id}")

        started = time.perf_counter()
        fetched = client.get_item(id=created.id)
        first = time.perf_counter() - started
        assert fetched.item == item
        print(f"get_item  -> {fetched.item}")
        started = time.perf_counter()
        client.get_item(id=created.id)
        again = time.perf_counter() - started
        print(f"get_item  -> again, from the cache ({first * 1000:.1f} ms, then {again * 1000:.1f} ms)")

        try:
            client.get_item(id=10**6)
        except client.exceptions.DoesNotExist as exc:
            print(f"get_item  -> raised DoesNotExist: {exc}")

        try:
            client.put_item()
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

        try:
            for n in range(10):
                client.put_item(item={"name": f"cup {n}"})
        except client.exceptions.RequestThrottled:
            print(f"put_item  -> raised RequestThrottled after {n} more puts: the limit is 5 a minute")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else None)
