"""The /status page in headless Chromium over a real API, worker and two simulated SMSCs.

The chromium and page fixtures are tests/harness/browser.py's (Debian's chromium, installed
when missing; the test fails, never skips, when it cannot be). Screenshots land in the test's
tmp dir, and in docs/img/ with BRIDGE_SAVE_SCREENSHOTS=1.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from falcon import testing

from api.app import create_app
from bridge.config import read_settings
from tests.api.test_health import FAST, _smsc
from tests.harness.browser import shot
from tests.harness.http import serve_wsgi
from tests.harness.simulator import make_simulator  # noqa: F401  (fixture)

TOKEN = "op-" + "s" * 40
WITHIN = 10_000  # ms the page may take to show a change ("within a few seconds")


@pytest.fixture
def sims(make_simulator):  # noqa: F811
    return {n: make_simulator(system_id="bridge", password="secret") for n in ("alpha", "beta")}


@pytest.fixture
def served(api_config, db, redis_client, bridge_service, sims) -> Iterator[tuple[str, object]]:
    """A worker bound to both simulators and the app on a real WSGI server:
    (base URL, a function that stops the API)."""
    from bridge.delivery.worker import Worker

    config = api_config.replace(
        smsc=tuple(_smsc(s, name=n) for n, s in sims.items()), operator_token=TOKEN
    )
    worker = Worker(config, db=db, redis=redis_client, settings=read_settings(FAST))
    worker.start()
    api = contextlib.ExitStack()
    try:
        base = api.enter_context(serve_wsgi(create_app(config, bridge_service, redis_client)))
        yield base, api.close  # the test may stop the API early (closing twice is a no-op)
    finally:
        api.close()
        worker.stop(drain_timeout=2.0)


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the page reads no SQL
def test_the_page_follows_a_bind_down_and_up_without_a_reload(
    served,
    page,
    sims,
    make_simulator,  # noqa: F811
    bridge_service,
    demo_account,
    tmp_path,
):
    from playwright.sync_api import expect

    base, stop_api = served
    bridge_service.send(demo_account.id, [f"+2547{10_000_000 + i:08d}" for i in range(30)], "hi")
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    page.goto(base + "/status")
    expect(page.locator("#login")).to_be_visible()
    page.fill("#token", "wrong-token")
    page.click("#login-button")
    expect(page.locator("#login-error")).to_have_text("Invalid operator token.", timeout=WITHIN)
    page.fill("#token", TOKEN)
    page.click("#login-button")

    def conn_state(name: str):
        return page.locator(f'#connections tr[data-connection="{name}"] .conn-state')

    for name in sims:
        expect(conn_state(name)).to_have_text("▲ UP", timeout=WITHIN)
        expect(page.locator(f'#binds tr[data-connection="{name}"] .bind-state')).to_have_text(
            "▲ BOUND", timeout=WITHIN
        )
    expect(page.locator("#overall")).to_have_text("▲ ALL OK", timeout=WITHIN)
    expect(page.locator("#stale")).to_be_hidden()
    assert page.evaluate("sessionStorage.getItem('smpp-bridge.operator-token')") == TOKEN
    page.evaluate("window.__notReloaded = true")
    shot(page, tmp_path, "status-page.png", docs=True)

    port = sims["alpha"].port
    sims["alpha"].stop()
    expect(conn_state("alpha")).to_have_text("▼ DOWN", timeout=WITHIN)
    expect(conn_state("alpha")).to_have_class("state conn-state bad")
    bind = page.locator('#binds tr[data-connection="alpha"]')
    expect(bind).not_to_have_attribute("data-state", "bound", timeout=WITHIN)
    expect(conn_state("beta")).to_have_text("▲ UP")
    expect(page.locator("#problems li").first).to_contain_text("connection alpha has no bound")
    expect(page.locator("#overall")).to_have_text("▼ PROBLEMS")
    shot(page, tmp_path, "status-page-bind-down.png", docs=True)

    sims["alpha"] = make_simulator(system_id="bridge", password="secret", port=port)
    expect(conn_state("alpha")).to_have_text("▲ UP", timeout=WITHIN)
    expect(page.locator("#overall")).to_have_text("▲ ALL OK", timeout=WITHIN)
    expect(page.locator("#problems li")).to_have_count(0)
    expect(page.locator("#stale")).to_be_hidden()
    shot(page, tmp_path, "status-page-restored.png")

    stop_api()  # the API stops answering: the board says so instead of showing old green
    expect(page.locator("#stale")).to_be_visible(timeout=WITHIN)
    expect(page.locator("#stale")).to_contain_text("STALE")
    expect(page.locator("body")).to_have_class("is-stale")
    expect(page.locator("#overall")).to_have_text("? UNKNOWN")  # no longer "ALL OK"
    shot(page, tmp_path, "status-page-stale.png")
    assert page.evaluate("window.__notReloaded") is True  # the same document all along
    assert navigations == [base + "/status"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_page_is_served_without_the_token_and_holds_no_data(app):
    client = testing.TestClient(app)
    page = client.simulate_get("/status")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "Content-Security-Policy" in page.headers
    assert "connect-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-cache, private"
    assert page.headers["access-control-allow-origin"] == "*"
    for name, kind in (("status.css", "text/css"), ("status.js", "application/javascript")):
        r = client.simulate_get(f"/status/{name}")
        assert r.status_code == 200 and r.headers["content-type"].startswith(kind)
    for text in (page.text, client.simulate_get("/status/status.js").text):
        assert "http://" not in text.replace("http://www.w3.org/2000/svg", "")
        assert "https://" not in text  # no external assets
    assert client.simulate_get("/status/../app.py").status_code == 404
    assert client.simulate_get("/status/status.html").status_code == 404
    assert client.simulate_get("/status/nope.js").status_code == 404
