"""Documentation pages: Swagger UI at ``/api/v2`` (every asset served from ``api/static``), the
OpenAPI document at ``/api/v2/openapi.json`` and the OAuth2 redirect page the contract names."""

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


class SwaggerUI:
    """``GET /api/v2``: the Swagger UI page."""

    def __init__(self) -> None:
        self._page = _read("swagger-ui.html")

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = HTML
        resp.data = self._page


class Asset:
    """``GET /api/v2/assets/{name}``: one of the Swagger UI files, from memory."""

    def __init__(self) -> None:
        self._files = {name: (_read(name), kind) for name, kind in ASSETS.items()}

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        if name not in self._files:
            raise falcon.HTTPNotFound()
        resp.data, resp.content_type = self._files[name]


class OpenApiDocument:
    """``GET /api/v2/openapi.json``: the document built once from the schemas."""

    def __init__(self, spec: dict) -> None:
        self._body = json.dumps(spec, indent=1).encode("utf-8")

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = falcon.MEDIA_JSON
        resp.data = self._body


class OAuth2Callback:
    """``GET /api/oauth2-callback``: HTML that loads ``oauth2-redirect.js`` beside it."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = HTML
        resp.text = OAUTH2_CALLBACK_HTML


class OAuth2RedirectScript:
    """``GET /api/oauth2-redirect.js``: Swagger UI's OAuth2 redirect handler."""

    def __init__(self) -> None:
        self._script = _read("oauth2-redirect.js")

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = "application/javascript; charset=UTF-8"
        resp.data = self._script
