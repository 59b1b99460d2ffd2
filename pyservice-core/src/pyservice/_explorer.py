"""The API explorer: a Swagger UI page over the service's OpenAPI document, served from a pip package.

Swagger UI's files come from the ``swagger-ui-py`` package (``pip install
'pyservice-core[explorer]'``), read once per process; the page loads
nothing from anywhere else, so it works offline and behind a firewall, and
its ``Content-Security-Policy`` says so to the browser.
"""

from __future__ import annotations

import html
import importlib.util
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from ._errors import ApiError
from ._wire import STATUS_LINES, dumps

if TYPE_CHECKING:
    from ._health import GetEndpoint
    from .typing import StartResponse, WSGIEnvironment

__all__ = ["ASSETS", "PACKAGE", "explorer_endpoints", "static_folder"]

#: The pip package whose files the explorer serves, and its import name.
PACKAGE = ("swagger-ui-py", "swagger_ui")

#: The package's files the page uses, by the name they are served under.
ASSETS: Mapping[str, str] = {
    "swagger-ui.css": "text/css; charset=utf-8",
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "favicon-32x32.png": "image/png",
    "favicon-16x16.png": "image/png",
}

# Swagger UI sets inline styles and draws some icons from data: URLs; everything else is this server's.
_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="stylesheet" href="{base}/swagger-ui.css">
<link rel="icon" type="image/png" href="{base}/favicon-32x32.png" sizes="32x32">
<link rel="icon" type="image/png" href="{base}/favicon-16x16.png" sizes="16x16">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{base}/swagger-ui-bundle.js"></script>
<script src="{base}/explorer.js"></script>
</body>
</html>
"""

# In a file of its own rather than inline, so the page's policy can forbid inline scripts.
_SCRIPT = """window.addEventListener("load", function () {{
  window.ui = SwaggerUIBundle({{
    url: {document},
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout"
  }});
}});
"""

_cache: dict[str, bytes] = {}


def static_folder() -> Path:
    """Where the installed ``swagger-ui-py`` keeps Swagger UI's files.

    Found without importing the package (nothing of it runs in the service).

    Raises:
        ApiError: the package is not installed (``explorer`` is the key that
            asked for it).
    """
    spec = importlib.util.find_spec(PACKAGE[1])
    locations = None if spec is None else spec.submodule_search_locations
    if not locations:
        raise ApiError(
            "explorer",
            f"the API explorer serves Swagger UI from the {PACKAGE[0]} package, which is not installed: "
            "pip install 'pyservice-core[explorer]'",
        )
    return Path(next(iter(locations))) / "static"


def _asset(name: str) -> bytes:
    # Read once per process: the largest file is 1.5 MB, and every worker serves it the same.
    body = _cache.get(name)
    if body is None:
        path = static_folder() / name
        try:
            body = path.read_bytes()
        except OSError as exc:
            raise ApiError("explorer", f"cannot read Swagger UI's {name} from {path.parent}: {exc}") from None
        _cache[name] = body
    return body


def _static(body: bytes, content_type: str, *extra: tuple[str, str]) -> GetEndpoint:
    headers = [
        ("Content-Type", content_type),
        ("Content-Length", str(len(body))),
        ("X-Content-Type-Options", "nosniff"),
        *extra,
    ]

    def endpoint(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        start_response(STATUS_LINES[200], list(headers))
        return [b""] if environ.get("REQUEST_METHOD") == "HEAD" else [body]

    return endpoint


def explorer_endpoints(path: str, document: str, title: str) -> dict[str, GetEndpoint]:
    """The explorer page at ``path`` and its files under ``path/``.

    Args:
        path: where the page is served (the api's ``explorer``).
        document: the path of the OpenAPI document it shows (the api's ``openapi``).
        title: the page's title (the api's name).

    Raises:
        ApiError: Swagger UI's files cannot be read.
    """
    base = path.rstrip("/")
    cached = ("Cache-Control", "public, max-age=3600")
    endpoints = {f"{base}/{name}": _static(_asset(name), content_type, cached) for name, content_type in ASSETS.items()}
    # dumps: the document path as a JSON (so JavaScript) string literal, whatever it holds.
    script = _SCRIPT.format(document=dumps(document).decode()).encode()
    endpoints[f"{base}/explorer.js"] = _static(script, "text/javascript; charset=utf-8")
    page = _PAGE.format(title=html.escape(f"{title}: API explorer"), base=html.escape(base)).encode()
    policy = ("Content-Security-Policy", _POLICY)
    endpoints[path] = _static(page, "text/html; charset=utf-8", policy)
    if base and base != path:
        endpoints[base] = endpoints[path]
    return endpoints
