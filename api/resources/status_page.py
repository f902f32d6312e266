"""The NOC's status page: ``GET /status`` and its three files, plain HTML, CSS and JS.

The page holds no data and is served without a token; its script asks for the operator token
(a login form, kept in the browser tab's sessionStorage) and polls ``GET /api/v2/status`` with
it. Every file is read once at start and served from memory under a Content-Security-Policy
that allows only this origin, so the page can load nothing from anywhere else.
"""

from __future__ import annotations

from pathlib import Path

import falcon

PAGE_PATH = "/status"
STATIC_DIR = Path(__file__).resolve().parent.parent / "static" / "status"
# name -> content type; only these files are served (no directory listing, no path walking).
FILES = {
    "status.html": "text/html; charset=UTF-8",
    "status.css": "text/css; charset=UTF-8",
    "status.js": "application/javascript; charset=UTF-8",
}
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
)


class StatusPage:
    """``GET /status`` (the page) and ``GET /status/{name}`` (its CSS and JS)."""

    def __init__(self, directory: Path = STATIC_DIR) -> None:
        self._files = {n: ((directory / n).read_bytes(), kind) for n, kind in FILES.items()}

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self._serve(resp, "status.html")

    def on_get_file(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        if name not in self._files or name == "status.html":
            raise falcon.HTTPNotFound(description=f"no such file; the page is at {PAGE_PATH}")
        self._serve(resp, name)

    def _serve(self, resp: falcon.Response, name: str) -> None:
        resp.data, resp.content_type = self._files[name]
        resp.set_header("Content-Security-Policy", CSP)
        resp.set_header("X-Content-Type-Options", "nosniff")
        resp.set_header("Referrer-Policy", "no-referrer")


def routes(app: falcon.App) -> None:
    """Add ``/status`` and ``/status/{name}``."""
    page = StatusPage()
    app.add_route(PAGE_PATH, page)
    app.add_route(PAGE_PATH + "/{name}", page, suffix="file")
