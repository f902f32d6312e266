"""/metrics and the logs under a real gunicorn with 2 workers: the request count is the sum over
both workers (prometheus-client multiprocess mode), every log line is one JSON object with
BRIDGE_LOG_FORMAT=json, and the access log masks api_key, password and message_body."""

from __future__ import annotations

import http.client
import json
import re
import socket

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.api.helpers import get, gunicorn_api, sqlite_only
from tests.harness.procs import wait_until

pytestmark = [pytest.mark.slow, sqlite_only]
ROUTE = "/api/oauth2-callback"  # a page that reads nothing: only the counting is tested
SECRET_KEY = "sb_test_key_must_not_be_logged"
SECRET_PASSWORD = "hunter2-must-not-be-logged"
SECRET_TEXT = "message-text-must-not-be-logged"


@pytest.fixture
def served(tmp_path, database_url, db, redis_server):
    with gunicorn_api(
        tmp_path,
        database_url,
        redis_server.url,
        BRIDGE_API_THREADS="2",
        BRIDGE_LOG_FORMAT="json",
        BRIDGE_ACCESS_LOG="-",
    ) as answer:
        yield answer


def _count(port: int) -> float:
    status, _, body = get(port, "/metrics")
    assert status == 200, body
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            if s.name == "smpp_bridge_http_requests_total" and s.labels == {
                "route": ROUTE,
                "method": "GET",
                "status": "200",
            }:
                return s.value
    return 0.0


def test_requests_served_by_both_workers_are_counted_once_each(served):
    port, _, out = served
    wait_until(
        lambda: len(out.find("accepting (connection board slot")) >= 2,
        timeout=30,
        message="both workers to load the app",
    )
    workers = {int(p) for p in re.findall(r"Booting worker with pid: (\d+)", out.text())}
    before = _count(port)
    # 8 keep-alive connections opened at once are spread over the workers (balanced worker)
    conns = [http.client.HTTPConnection("127.0.0.1", port, timeout=10) for _ in range(8)]
    try:
        for conn in conns:
            conn.connect()
        for _ in range(3):
            for conn in conns:
                conn.request("GET", ROUTE)
                response = conn.getresponse()
                response.read()
                assert response.status == 200
    finally:
        for conn in conns:
            conn.close()
    # the access log says which worker (pid) served each request: both did
    served_by = wait_until(
        lambda: (lambda pids: len(pids) == 2 and pids)(
            {r["pid"] for r in _records(out) if r.get("logger") == "gunicorn.access"} & workers
        ),
        timeout=10,
        message="access lines from both workers",
    )
    assert served_by == workers
    assert _count(port) - before == 24  # both workers' counts, summed by every scrape
    assert _count(port) - before == 24  # whichever worker answers the scrape


def test_every_line_is_json_and_the_access_log_masks_secrets(served):
    port, _, out = served
    query = f"api_key={SECRET_KEY}&password={SECRET_PASSWORD}&numbers=0701234567"
    status, _, _ = get(port, f"/api/v2/account/balance?{query}")
    assert status == 401  # an unknown key
    status, _, _ = get(port, f"/v1/sms/send?username=demo&Password={SECRET_PASSWORD}")
    # a GET send's text is in its query: masked too (message text is never logged)
    status, _, _ = get(port, f"/api/v2/sms/send?numbers=0701234567&Message_Body={SECRET_TEXT}")
    access = wait_until(
        lambda: (
            len(
                [
                    r
                    for r in _records(out)
                    if r.get("logger") == "gunicorn.access" and "/sms/send" in r["message"]
                ]
            )
            == 2
            and [r for r in _records(out) if r.get("logger") == "gunicorn.access"]
        ),
        timeout=10,
        message="the access lines",
    )
    lines = [r["message"] for r in access]
    assert any("api_key=***&password=***&numbers=0701234567" in line for line in lines), lines
    assert any("Password=***" in line for line in lines), lines
    assert any("numbers=0701234567&Message_Body=*** " in line for line in lines), lines
    text = out.text()
    assert SECRET_KEY not in text and SECRET_PASSWORD not in text and SECRET_TEXT not in text
    for record in _records(out):  # each line parsed (in _records), each with the core fields
        assert {"time", "level", "logger", "pid", "message"} <= record.keys(), record


def test_a_malformed_request_line_s_key_and_text_stay_out_of_the_error_log(served):
    port, _, out = served
    # a client that did not encode the spaces of its text: gunicorn refuses the request line
    # and its warning quoted it whole, key and text
    line = f"GET /api/v2/sms/send?numbers=0701234567&message_body=a {SECRET_TEXT}&api_key="
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"{line}{SECRET_KEY} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert sock.makefile("rb").readline().split()[1] == b"400"
    refused = wait_until(
        lambda: [r for r in _records(out) if "Invalid request from ip=" in r["message"]],
        timeout=10,
        message="gunicorn's warning",
    )
    assert "not logged" in refused[0]["message"], refused
    assert SECRET_KEY not in out.text() and SECRET_TEXT not in out.text()


def _records(out) -> list[dict]:
    """Every line gunicorn and the app printed, parsed: a line that is not JSON fails."""
    records = []
    for line in list(out.lines):
        try:
            records.append(json.loads(line))
        except ValueError:
            pytest.fail(f"not a JSON log line: {line!r}")
    return records
