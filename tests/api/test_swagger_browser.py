"""Swagger UI (/api/v2) and the OAuth2 callback page in headless Chromium over a real API.

The pages' strict Content-Security-Policy (api/resources/docs.py PAGE_HEADERS) must let Swagger
UI render, authorize and try out an operation with no violation, no console error and no
request leaving 127.0.0.1. Fixtures: tests/harness/browser.py. Screenshots: the test's tmp dir.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import urlsplit
from urllib.request import urlopen

import pytest

from api.resources.docs import CSP
from tests.harness.browser import PageLog, shot
from tests.harness.http import serve_wsgi

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
WITHIN = 15_000  # ms Swagger UI may take to render or answer


@pytest.fixture
def base(app) -> Iterator[str]:
    """The app on a real WSGI server on 127.0.0.1."""
    with serve_wsgi(app) as url:
        yield url


def _assert_clean(log: PageLog) -> None:
    assert log.csp_violations() == []
    assert log.console_errors == []
    assert log.page_errors == []
    outside = [url for url in log.requests if urlsplit(url).hostname != "127.0.0.1"]
    assert outside == []  # every asset, the document and the try-out stay on this server


def test_swagger_ui_renders_authorizes_and_tries_out_under_its_csp(
    base, page, demo_account, tmp_path
):
    from playwright.sync_api import expect

    with urlopen(base + "/api/v2/openapi.json", timeout=10) as answer:
        doc = json.load(answer)
    log = PageLog.attach(page)
    page.set_default_timeout(WITHIN)
    answer = page.goto(base + "/api/v2")
    assert answer is not None and answer.headers["content-security-policy"] == CSP  # the strict one
    operations = page.locator(".opblock")
    expect(operations.first).to_be_visible(timeout=WITHIN)
    expected = sorted(
        f"{method.upper()} {path}"
        for path, methods in doc["paths"].items()
        if path.startswith("/api/v2")
        for method in methods
    )
    expect(operations).to_have_count(
        sum(len(methods) for methods in doc["paths"].values()), timeout=WITHIN
    )
    shown = set()
    for block in operations.all():
        method = block.locator(".opblock-summary-method").inner_text().strip()
        path = block.locator(".opblock-summary-path").get_attribute("data-path")
        shown.add(f"{method} {path}")
    assert [op for op in expected if op not in shown] == []
    shot(page, tmp_path, "swagger-ui.png")

    page.get_by_role("button", name="Authorize").first.click()
    dialog = page.locator(".dialog-ux")
    expect(dialog).to_be_visible()
    header_box = dialog.locator(".auth-container").filter(has_text="ApiKeyHeader")
    header_box.locator("input").fill(demo_account.api_key)
    header_box.get_by_role("button", name="Authorize").click()
    expect(header_box.get_by_role("button", name="Logout")).to_be_visible()
    dialog.get_by_role("button", name="Close").first.click()
    expect(dialog).to_be_hidden()

    balance = operations.filter(
        has=page.locator('.opblock-summary-path[data-path="/api/v2/account/balance"]')
    )
    balance.locator(".opblock-summary").click()
    balance.get_by_role("button", name="Try it out").click()
    balance.get_by_role("button", name="Execute").click()
    live = balance.locator(".live-responses-table .response .response-col_status")
    expect(live.first).to_have_text("200", timeout=WITHIN)
    body = balance.locator(".live-responses-table .response-col_description pre").first
    expect(body).to_contain_text('"balance"')
    balance.scroll_into_view_if_needed()
    shot(page, tmp_path, "swagger-ui-try-out.png")
    assert base + "/api/v2/account/balance" in log.requests
    _assert_clean(log)


def test_oauth2_callback_page_loads_its_script_under_its_csp(base, page):
    log = PageLog.attach(page)
    answer = page.goto(base + "/api/oauth2-callback")
    assert answer is not None and answer.headers["content-security-policy"] == CSP
    page.wait_for_load_state("load")
    assert base + "/api/oauth2-redirect.js" in log.requests
    # Opened without Swagger UI as its opener, the script can only fail on window.opener:
    # that error shows it ran (the policy did not block it), and nothing else went wrong.
    assert log.csp_violations() == []
    assert log.page_errors == ["Cannot read properties of null (reading 'swaggerUIRedirectOauth2')"]
    outside = [url for url in log.requests if urlsplit(url).hostname != "127.0.0.1"]
    assert outside == []
