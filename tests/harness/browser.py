"""Headless Chromium for the browser tests of the pages the API serves (/status, Swagger UI).

Debian's chromium is installed by the ``chromium`` fixture when missing (the test fails, never
skips, when it cannot be); Playwright drives that binary (never ``playwright install``).
``page`` is a fresh browser (own user-data dir) with one 1920x1080 page; :class:`PageLog`
records what a page asked for and complained about; :func:`shot` saves full-page screenshots
in the test's tmp dir (and in docs/img/ with BRIDGE_SAVE_SCREENSHOTS=1 for the ones the docs
show). The tests import the fixtures through tests/api/conftest.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"

# Runs in every document before its own scripts (Playwright injects it past the page's CSP):
# each Content-Security-Policy violation the page causes is kept in window.__cspViolations.
_CSP_RECORDER = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(
    e.violatedDirective + " blocked " + (e.blockedURI || "inline") + " at " +
    (e.sourceFile || "") + ":" + e.lineNumber
  );
});
"""


@pytest.fixture(scope="session")
def chromium() -> str:
    """The chromium binary, installed with apt-get when missing; fails (never skips) if not."""
    found = shutil.which("chromium")
    if found is None:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "chromium"]):
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
            if done.returncode != 0:
                pytest.fail(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr[-2000:]}")
        found = shutil.which("chromium")
    if found is None:
        pytest.fail("chromium is not on PATH after apt-get install -y chromium")
    return found


@pytest.fixture
def page(chromium: str, tmp_path: Path) -> Iterator[Any]:
    """A fresh headless Chromium (own user-data dir) and one 1920x1080 page."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=chromium,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1920, "height": 1080},
        )
        try:
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()


@dataclass
class PageLog:
    """Every request a page made, its console errors and uncaught exceptions, and (through
    :meth:`csp_violations`) the Content-Security-Policy violations of its current document."""

    page: Any
    requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    @classmethod
    def attach(cls, page: Any) -> PageLog:
        """Start recording on ``page``; call before its first ``goto``."""
        log = cls(page)
        page.add_init_script(_CSP_RECORDER)
        page.on("request", lambda request: log.requests.append(request.url))
        page.on(
            "console",
            lambda msg: log.console_errors.append(msg.text) if msg.type == "error" else None,
        )
        page.on("pageerror", lambda error: log.page_errors.append(str(error)))
        return log

    def csp_violations(self) -> list[str]:
        return list(self.page.evaluate("window.__cspViolations || []"))


def shot(page: Any, tmp_path: Path, name: str, docs: bool = False) -> Path:
    """A full-page screenshot in tmp_path; the ones the docs show (``docs``) are copied to
    docs/img/ too with BRIDGE_SAVE_SCREENSHOTS=1."""
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=True)
    if docs and os.environ.get("BRIDGE_SAVE_SCREENSHOTS") == "1":
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOCS_IMG / name)
    return path
