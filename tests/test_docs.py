"""Every Python sample in the README and the docs runs, so the documentation cannot drift from the code.

The ``python`` blocks of one page run in order in one namespace. An HTML
comment just before a block steers it:

- ``<!-- test: skip -->``: not run (a fragment that cannot stand alone).
- ``<!-- test: serve service -->``: before the block, the page's ``service``
  is served on a free loopback port and the page's ``api`` points there, so
  the client samples call a real server.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pyservice.testing
import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md"), *ROOT.glob("pyservice-*/README.md")])
BLOCK = re.compile(r"(?:<!-- test: (?P<directive>[^>]*?) -->\s*\n)?```python\n(?P<code>.*?)```", re.DOTALL)


def samples(page: Path) -> list[tuple[str | None, str, int]]:
    text = page.read_text()
    return [
        (match["directive"], match["code"], text.count("\n", 0, match.start()) + 1) for match in BLOCK.finditer(text)
    ]


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def serve(namespace: dict[str, object]) -> Iterator[None]:
    service = namespace["service"]
    server = make_server("127.0.0.1", 0, service.wsgi_application, handler_class=QuietHandler)  # type: ignore[attr-defined]
    api = namespace["api"]
    api["endpoint"] = {**api.get("endpoint", {}), "host": "127.0.0.1", "port": server.server_port}  # type: ignore[index, attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    "page", [page for page in PAGES if samples(page)], ids=lambda page: str(page.relative_to(ROOT))
)
def test_the_samples_of_a_page_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": f"docs_sample_{page.stem}"}
    servers = []
    try:
        for directive, code, line in samples(page):
            if directive == "skip":
                continue
            if directive == "serve service":
                server = serve(namespace)
                next(server)
                servers.append(server)
            elif directive is not None:
                pytest.fail(f"{page}:{line}: unknown directive {directive!r}")
            try:
                exec(compile(code, f"{page}:{line}", "exec", dont_inherit=True), namespace)
            except Exception as exc:
                pytest.fail(f"{page.relative_to(ROOT)}, the sample at line {line} raised {exc!r}")
    finally:
        for server in servers:
            next(server, None)


def test_pages_have_samples_to_check():
    assert samples(ROOT / "README.md")
    assert samples(ROOT / "docs" / "getting-started.md")


def test_every_api_key_is_documented():
    from pyservice._api import API_OPTIONS, ENDPOINT_OPTIONS, OPERATION_OPTIONS

    page = (ROOT / "docs" / "api-description.md").read_text()
    for key in [*API_OPTIONS, *ENDPOINT_OPTIONS, *OPERATION_OPTIONS]:
        assert f"| `{key}` |" in page, f"the api key {key!r} is missing from docs/api-description.md"


def test_pyservice_testing_is_importable_for_samples():
    assert pyservice.testing.client_for


PLUGIN_PACKAGES = {
    "pyservice-logging": ["pyservice_logging:LoggingPlugin", "pyservice_logging:RedactPlugin"],
    "pyservice-throttle": ["pyservice_throttle:Throttle"],
    "pyservice-cache": ["pyservice_cache:Cache"],
    "pyservice-sqlalchemy": ["pyservice_sqlalchemy:SQLAlchemy"],
    "pyservice-auth": ["pyservice_auth:Auth"],
    "pyservice-otel": ["pyservice_otel:Otel"],
    "pyservice-idempotency": ["pyservice_idempotency:Idempotency"],
}


@pytest.mark.parametrize("package", sorted(PLUGIN_PACKAGES))
def test_every_plugin_config_key_is_documented_in_its_readme(package):
    import importlib

    readme = ROOT / package / "README.md"
    if not readme.exists():
        pytest.skip(f"{package} is not in this checkout")
    text = readme.read_text()
    for target in PLUGIN_PACKAGES[package]:
        module_name, _, name = target.partition(":")
        try:
            plugin = getattr(importlib.import_module(module_name), name)
        except (ImportError, AttributeError) as exc:
            pytest.fail(f"{target} cannot be imported to check its README: {exc!r}")
        keys = {*plugin.options, *plugin.operation_options, *plugin.api_keys, *plugin.operation_keys}
        missing = sorted(key for key in keys if f"`{key}`" not in text)
        assert not missing, f"{package}/README.md does not document {missing}"


# A Sphinx role (":meth:`x`") that mkdocstrings would show literally in the API reference.
SPHINX_ROLE = re.compile(r":(?:py:)?(?:meth|attr|doc|class|func|data|mod|exc|obj|ref|term):(?:`|<code>)")


def test_no_docstring_of_the_core_carries_a_sphinx_role():
    # The API reference renders pyservice-core's docstrings (mkdocstrings reads Markdown, not reST).
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in sorted(ROOT.glob("pyservice-core/src/**/*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if SPHINX_ROLE.search(line)
    ]
    assert not found, "write ``name`` (Markdown code) instead of a Sphinx role:\n" + "\n".join(found)


def test_the_rendered_site_shows_no_sphinx_role(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    import os
    import subprocess
    import sys

    site = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--quiet", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    found = [
        f"{page.relative_to(site)}: ...{text[max(0, match.start() - 40) : match.end() + 40]}..."
        for page in sorted(site.rglob("*.html"))
        for text in [page.read_text()]
        for match in SPHINX_ROLE.finditer(text)
    ]
    assert not found, "raw Sphinx roles in the rendered site:\n" + "\n".join(found)
