"""The README's items example runs as written."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import pyservice
import pytest
from pyservice.testing import client_for

README = Path(__file__).parent.parent / "README.md"


def blocks(language):
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)


def test_the_items_example_of_the_readme_works(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "api.json").write_text(blocks("json")[0], encoding="utf-8")
    path = tmp_path / "service.py"
    path.write_text(blocks("python")[0], encoding="utf-8")
    # A module of its own: SQLAlchemy resolves the annotations through sys.modules.
    spec = importlib.util.spec_from_file_location("readme_items_service", path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "readme_items_service", module)
    spec.loader.exec_module(module)
    service = module.service
    client = client_for(service, json.loads((tmp_path / "api.json").read_text()))
    created = client.put_item(item={"name": "teapot", "colour": "blue"})
    assert client.get_item(id=created.id).item == {"name": "teapot", "colour": "blue"}
    with pytest.raises(client.exceptions.AlreadyExists):
        client.put_item(item={"name": "teapot"})
    with pytest.raises(client.exceptions.DoesNotExist):
        client.get_item(id=created.id + 1)
    with pytest.raises(client.exceptions.ItemRequired):
        client.put_item()
    assert isinstance(service, pyservice.Service)
    service.plugins[0].dispose()
