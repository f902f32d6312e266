"""Documentation pages: Swagger UI at ``/api/v2`` (every asset served from ``api/static``), the
OpenAPI document at ``/api/v2/openapi.json`` and the OAuth2 redirect page the contract names.

Every one is served with :data:`PAGE_HEADERS`: no other site may frame the pages (a framed
Swagger UI holding a key could be clickjacked into sending), no file is sniffed as another
type, no Referer is sent, as for the /status page; and :data:`CSP` lets them run only this
server's scripts and styles and talk only to it (no 'unsafe-inline': Swagger UI with these
local assets needs none; tests/api/test_swagger_browser.py shows it in Chromium)."""

from __future__ import annotations

import json
from pathlib import Path

import falcon

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

# name -> content type; only these files are served (no directory listing, no path walking).
ASSETS = {
    "swagger-ui-bundle.js": "application/javascript; charset=UTF-8",
    "swagger-initializer.js": "application/javascript; charset=UTF-8",
    "swagger-ui.css": "text/css; charset=UTF-8",
    "index.css": "text/css; charset=UTF-8",
    "favicon-16x16.png": "image/png",
    "favicon-32x32.png": "image/png",
}
HTML = "text/html; charset=UTF-8"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers that predate it
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

# The contract's page, byte for byte (seed document, "Display Oauth2 callback pages").
OAUTH2_CALLBACK_HTML = """<!doctype html>
<html lang="en-US">
<body>
<script src="oauth2-redirect.js"></script>
</body>
</html>
"""


def _read(name: str) -> bytes:
    return (STATIC_DIR / name).read_bytes()


def _page(resp: falcon.Response, content_type: str, data: bytes) -> None:
    resp.content_type, resp.data = content_type, data
    resp.set_headers(PAGE_HEADERS)


class SwaggerUI:
    """``GET /api/v2``: the Swagger UI page."""

    def __init__(self) -> None:
        self._page = _read("swagger-ui.html")

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        _page(resp, HTML, self._page)


class Asset:
    """``GET /api/v2/assets/{name}``: one of the Swagger UI files, from memory."""

    def __init__(self) -> None:
        self._files = {name: (_read(name), kind) for name, kind in ASSETS.items()}

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        if name not in self._files:
            raise falcon.HTTPNotFound()
        data, kind = self._files[name]
        _page(resp, kind, data)


class OpenApiDocument:
    """``GET /api/v2/openapi.json``: the document built once from the schemas."""

    def __init__(self, spec: dict) -> None:
        self._body = json.dumps(spec, indent=1).encode("utf-8")

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        _page(resp, falcon.MEDIA_JSON, self._body)


class OAuth2Callback:
    """``GET /api/oauth2-callback``: HTML that loads ``oauth2-redirect.js`` beside it."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        _page(resp, HTML, OAUTH2_CALLBACK_HTML.encode("utf-8"))


class OAuth2RedirectScript:
    """``GET /api/oauth2-redirect.js``: Swagger UI's OAuth2 redirect handler."""

    def __init__(self) -> None:
        self._script = _read("oauth2-redirect.js")

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        _page(resp, "application/javascript; charset=UTF-8", self._script)
