"""The API explorer: a Swagger UI page served from a pip package, over the served document."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pyservice
import pytest
import requests
from openapi_spec_validator import validate
from pyservice import _explorer
from pyservice.testing import LiveServer

APPS = Path(__file__).parent / "apps"


class References(HTMLParser):
    """Every URL a page makes the browser load: scripts, stylesheets, icons, images."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        for name in ("src", "href"):
            if found.get(name):
                self.urls.append(found[name] or "")


@pytest.fixture(scope="module")
def server():
    with LiveServer("explorer_app:app", workers=1, cwd=APPS) as running:
        yield running


@pytest.fixture(scope="module")
def page(server):
    return requests.get(f"{server.url}/docs", timeout=10)


def references(page):
    parser = References()
    parser.feed(page.text)
    return [urljoin(page.url, url) for url in parser.urls]


def test_the_page_is_served_at_the_path_the_api_names(page):
    assert page.status_code == 200
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert '<div id="swagger-ui">' in page.text
    assert "<title>greeter: API explorer</title>" in page.text


def test_every_asset_the_page_references_is_served_by_the_service_itself(server, page):
    urls = references(page)
    assert len(urls) == 5  # the stylesheet, two icons, the bundle and the script that starts it
    for url in urls:
        assert urlsplit(url).netloc == urlsplit(server.url).netloc, url
        answer = requests.get(url, timeout=10)
        assert answer.status_code == 200, url
        assert answer.content, url
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
    bundle = requests.get(f"{server.url}/docs/swagger-ui-bundle.js", timeout=10)
    assert bundle.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert "SwaggerUIBundle" in bundle.text
    css = requests.get(f"{server.url}/docs/swagger-ui.css", timeout=10)
    assert css.headers["Content-Type"] == "text/css; charset=utf-8"


def test_the_script_shows_the_merged_document_the_group_serves(server):
    script = requests.get(f"{server.url}/docs/explorer.js", timeout=10).text
    document_path = re.search(r'url: "([^"]+)"', script).group(1)
    assert document_path == "/openapi.json"
    document = requests.get(urljoin(server.url, document_path), timeout=10).json()
    validate(document)
    assert {"/api/v1/greet", "/api/v2/greet"} <= set(document["paths"])
    assert document["servers"] == [{"url": server.url}]


def test_the_documents_servers_entry_is_where_try_it_out_calls_reach_the_service(server):
    document = requests.get(f"{server.url}/openapi.json", timeout=10).json()
    url = document["servers"][0]["url"] + "/api/v2/greet"
    assert requests.post(url, json={"name": "Ada"}, timeout=10).json() == {"greeting": "hello Ada"}


def test_the_bundle_is_a_swagger_ui_that_reads_openapi_3_1():
    # Swagger UI reads OpenAPI 3.1 from version 5 on; version 4 refuses our documents.
    bundle = (_explorer.static_folder() / "swagger-ui-bundle.js").read_text(encoding="utf-8")
    version = re.search(r'PACKAGE_VERSION:"(\d+)\.', bundle)
    assert version is not None
    assert int(version.group(1)) >= 5
    assert "isOAS31" in bundle


def test_the_page_loads_nothing_from_elsewhere(page):
    policy = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy
    assert "script-src 'self'" in policy
    assert "http://" not in page.text
    assert "https://" not in page.text


def test_the_explorer_path_answers_get_only(server):
    answer = requests.post(f"{server.url}/docs", timeout=10)
    assert answer.status_code == 405
    assert answer.json()["error"]["name"] == "MethodNotAllowed"


def test_the_explorer_needs_the_document():
    with pytest.raises(pyservice.ApiError) as raised:
        pyservice.Service(operations=["a"], explorer="/docs")
    assert raised.value.key == "explorer"


def test_the_explorers_assets_may_not_hide_an_operation():
    with pytest.raises(pyservice.ApiError) as raised:
        pyservice.Service(
            operations=["a"], openapi="/openapi.json", explorer="/api", endpoint={"path": "/api/{operation}"}
        )
    assert raised.value.key == "explorer"


def test_a_missing_package_fails_at_start_up_naming_the_key_and_the_install(monkeypatch):
    monkeypatch.setattr(_explorer, "PACKAGE", ("swagger-ui-py", "no_such_package_here"))
    with pytest.raises(pyservice.ApiError) as raised:
        pyservice.Service(operations=["a"], openapi="/openapi.json", explorer="/docs")
    assert raised.value.key == "explorer"
    assert "pip install 'pyservice-core[explorer]'" in str(raised.value)


def test_versions_sharing_an_explorer_must_share_its_document():
    v1 = pyservice.Service(version="v1", operations=["a"], openapi="/v1.json", explorer="/docs")
    v2 = pyservice.Service(version="v2", operations=["a"], openapi="/v2.json", explorer="/docs")
    with pytest.raises(pyservice.ApiError) as raised:
        pyservice.ServiceGroup(v1, v2)
    assert raised.value.key == "explorer"


def test_the_start_up_banner_names_the_explorer_beside_the_document(server):
    assert "openapi /openapi.json; explorer /docs" in server.output()
