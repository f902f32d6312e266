"""The API under a real gunicorn (2 workers): sweeper in the API processes, chunked bodies,
one rate-limit count across workers, keep-alive connections spread over the workers, clean
stop."""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
from decimal import Decimal

import pytest
import redis

from api.openapi import build_spec
from bridge.redis import keys as redis_keys
from bridge.service import BridgeService
from tests.api.helpers import get, gunicorn_api, read_answer
from tests.harness.procs import connections_to, free_port, wait_until

pytestmark = pytest.mark.slow


@pytest.fixture
def gunicorn(tmp_path, database_url, db, redis_server):
    """gunicorn with the API on a free port, over the test's database and Redis."""
    with gunicorn_api(
        tmp_path,
        database_url,
        redis_server.url,
        BRIDGE_API_THREADS="2",
        BRIDGE_RATE_LIMIT="5",
        BRIDGE_MAX_BODY_BYTES="2000",
        BRIDGE_SWEEPER_GRACE="0",
        BRIDGE_SWEEPER_INTERVAL="0.2",
    ) as served:
        yield served


@pytest.fixture
def account(bridge_config, db, redis_client):
    """An account and key, made with a service whose Redis is unreachable (nothing enqueued)."""
    dead = redis.Redis(port=free_port(), socket_connect_timeout=0.2, socket_timeout=0.2)
    service = BridgeService(bridge_config, db, dead, run_sweeper=False)
    service.start()
    info = service.create_account("acme", "pw-acme-1", balance=Decimal("100.00"))
    key = service.generate_key(info.id)
    service.send(info.id, "0701234567", "accepted while Redis was down")
    assert redis_client.xlen(redis_keys.OUTBOUND_STREAM) == 0  # committed, not enqueued
    yield key.api_key
    service.stop()


def test_the_api_processes_sweep_the_outbox(account, gunicorn, redis_client):
    """A message committed while Redis was down is enqueued by the API's sweeper thread."""
    wait_until(
        lambda: redis_client.xlen(redis_keys.OUTBOUND_STREAM) == 1,
        timeout=30,
        message="the sweeper in the API workers to enqueue the message",
    )


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_rate_limit_is_one_count_across_workers(account, gunicorn):
    port, _, _ = gunicorn
    answers = [get(port, "/api/v2/account/balance", {"X-API-Key": account}) for _ in range(8)]
    assert [a[0] for a in answers] == [200] * 5 + [429] * 3  # new connection each: both workers
    assert [a[1]["x-ratelimit-remaining"] for a in answers[:5]] == ["4", "3", "2", "1", "0"]
    assert json.loads(answers[-1][2])["error"] == "Too many requests."


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_chunked_body_over_the_limit_is_413(account, gunicorn):
    port, _, _ = gunicorn
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        chunks = (b"x" * 500 for _ in range(10))  # 5000 bytes, no Content-Length
        conn.request(
            "POST",
            "/api/v2/sms/send",
            body=chunks,
            encode_chunked=True,
            headers={
                "X-API-Key": account,
                "Content-Type": "application/json",
                "Transfer-Encoding": "chunked",
            },
        )
        resp = conn.getresponse()
        assert resp.status == 413
        assert json.loads(resp.read())["error"].startswith("Request body is larger than 2000")
        assert resp.getheader("access-control-allow-origin") == "*"
        # the worker's loop answers it, with the headers the OpenAPI document gives it
        documented = build_spec()["paths"]["/api/v2/sms/send"]["post"]["responses"]["413"]
        assert {name.lower() for name in resp.headers} >= set(documented["headers"])
    finally:
        conn.close()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_chunked_send_under_the_limit_works(account, gunicorn):
    port, _, _ = gunicorn
    body = json.dumps({"numbers": "0712345678", "message_body": "chunked"}).encode()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(
            "POST",
            "/api/v2/sms/send",
            body=iter([body[:10], body[10:]]),
            encode_chunked=True,
            headers={"X-API-Key": account, "Content-Type": "application/json"},
        )
        resp = conn.getresponse()
        assert resp.status == 200, resp.read()
        assert json.loads(resp.read())["count"] == 1
    finally:
        conn.close()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_requests_gunicorn_refuses_itself_get_json_too(account, gunicorn):
    port, _, _ = gunicorn
    status, raw_headers, body = get(port, "/api/v2/sms/send?numbers=" + "0" * 9000)
    headers = {name.lower(): value for name, value in raw_headers.items()}  # any case
    assert status == 414
    assert headers["content-type"] == "application/json"
    assert headers["access-control-allow-origin"] == "*"
    assert json.loads(body)["error"].startswith("The request line is too long")
    # the answer is the one the OpenAPI document gives for it, headers included
    documented = build_spec()["paths"]["/api/v2/sms/send"]["get"]["responses"]["414"]
    assert list(documented["content"]) == [headers["content-type"]]
    assert set(headers) >= set(documented["headers"])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"NOT A REQUEST\r\n\r\n")
        answer = sock.recv(65536)
    head, _, raw = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400") and b"application/json" in head
    assert "error" in json.loads(raw)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_burst_of_keepalive_connections_is_spread_over_the_workers(gunicorn):
    """8 connections opened at once end up 4:4 (give or take one), not all in one worker,
    and each keeps being served by the worker that holds it."""
    port, _, out = gunicorn
    workers = [int(p) for p in re.findall(r"Booting worker with pid: (\d+)", out.text())]
    # a worker still loading the app cannot accept, so it is not offered connections yet
    wait_until(
        lambda: len(out.find("accepting (connection board slot")) >= 2,
        timeout=30,
        message="both workers to load the app",
    )
    conns = [http.client.HTTPConnection("127.0.0.1", port, timeout=10) for _ in range(8)]
    try:
        for conn in conns:
            conn.connect()
        for _ in range(3):
            for conn in conns:
                conn.request("GET", "/api/oauth2-callback")
                response = conn.getresponse()
                response.read()
                assert response.status == 200
        split = wait_until(
            lambda: (lambda s: sum(s) == 8 and s)([connections_to(pid, port) for pid in workers]),
            timeout=10,
            message="the workers to hold the 8 connections",
        )
        assert max(split) - min(split) <= 2, f"connections per worker: {split}"
    finally:
        for conn in conns:
            conn.close()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_back_to_back_and_pipelined_requests_on_one_connection(gunicorn):
    """Requests that follow each other on a connection (the lingering thread serves them) and
    two requests sent in one write are all answered, in order, on the same connection."""
    port, _, _ = gunicorn
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        for _ in range(20):
            conn.request("GET", "/api/oauth2-callback")
            response = conn.getresponse()
            assert response.status == 200 and response.read()
        pipelined = (
            b"GET /api/v2/openapi.json HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /api/oauth2-redirect.js HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        conn.sock.sendall(pipelined)
        stream = conn.sock.makefile("rb")  # one buffer for both answers
        status, body = read_answer(stream)
        assert status == 200 and json.loads(body)["openapi"]
        status, body = read_answer(stream)
        assert status == 200 and b"oauth2" in body.lower()
    finally:
        conn.close()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_killed_workers_board_slot_goes_to_its_replacement(gunicorn):
    """The master frees a SIGKILLed worker's slot (child_exit), so the replacement takes it and
    the board never fills up with the dead."""
    port, _, out = gunicorn
    ready = r"Worker (\d+) accepting \(connection board slot (\d+)\)"
    wait_until(
        lambda: len(re.findall(ready, out.text())) >= 2,
        timeout=30,
        message="both workers to accept",
    )
    slots = dict(re.findall(ready, out.text()))
    assert sorted(slots.values()) == ["0", "1"]
    victim = next(pid for pid, slot in slots.items() if slot == "0")
    os.kill(int(victim), 9)
    wait_until(
        lambda: len(re.findall(ready, out.text())) >= 3, timeout=30, message="a replacement worker"
    )
    replacement = re.findall(ready, out.text())[-1]
    assert replacement[0] != victim and replacement[1] == "0"
    assert get(port, "/api/oauth2-callback")[0] == 200
