"""Calls the items service the way the README shows."""

from __future__ import annotations

import sys
from pathlib import Path

import pyservice

api = pyservice.load_api(Path(__file__).with_name("api.json"))


def main(port: int | None = None) -> None:
    endpoint = dict(api["endpoint"], port=port) if port else api["endpoint"]
    with pyservice.Client(**{**api, "endpoint": endpoint}) as client:
        item = {"name": "teapot", "colour": "blue"}
        created = client.put_item(item=item)
        print(f"put_item  -> id {created.id}")

        fetched = client.get_item(id=created.id)
        assert fetched.item == item
        print(f"get_item  -> {fetched.item}")

        try:
            client.get_item(id="no-such-id")
        except client.exceptions.DoesNotExist as exc:
            print(f"get_item  -> raised DoesNotExist: {exc}")

        try:
            client.put_item()
        except client.exceptions.ItemRequired as exc:
            print(f"put_item  -> raised ItemRequired: {exc}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else None)
