"""GET /metrics in this process: request counts by route template and status, the accept
latency histogram, rate-limit refusals, failed logins, the Redis gauges, and who may read it."""

from __future__ import annotations

import redis
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app
from api.resources.metrics import BAD_TOKEN, NO_TOKEN
from tests.api.helpers import basic, sqlite_only
from tests.harness.procs import free_port

pytestmark = sqlite_only
TOKEN = "op-token-0123456789abcdef"


def samples(client, **kwargs) -> dict[tuple, float]:
    """{(sample name, sorted label pairs): value} of one scrape (asserts it is served)."""
    result = client.simulate_get("/metrics", **kwargs)
    assert result.status_code == 200, result.text
    assert result.headers["content-type"].startswith("text/plain")
    found = {}
    for family in text_string_to_metric_families(result.text):
        for s in family.samples:
            found[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return found


def value(found: dict, name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


REQUESTS = "smpp_bridge_http_requests_total"


def test_requests_are_counted_by_route_template_and_status(client, key_headers):
    before = samples(client)
    for _ in range(2):
        assert (
            client.simulate_get("/api/v2/account/balance", headers=key_headers).status_code == 200
        )
    assert (
        client.simulate_get("/api/v2/sms/01NOSUCHMESSAGE", headers=key_headers).status_code == 404
    )
    assert client.simulate_get("/no/such/page").status_code == 404
    after = samples(client)
    balance = {"route": "/api/v2/account/balance", "method": "GET", "status": "200"}
    assert value(after, REQUESTS, **balance) - value(before, REQUESTS, **balance) == 2
    # the template, never the id: one series however many messages are looked up
    status = {"route": "/api/v2/sms/{message_id}", "method": "GET", "status": "404"}
    assert value(after, REQUESTS, **status) - value(before, REQUESTS, **status) == 1
    unmatched = {"route": "unmatched", "method": "GET", "status": "404"}
    assert value(after, REQUESTS, **unmatched) - value(before, REQUESTS, **unmatched) == 1


def test_sends_feed_the_accept_latency_histogram_and_the_stream_gauges(client, key_headers):
    count = "smpp_bridge_accept_seconds_count"
    before = samples(client)
    result = client.simulate_post(
        "/api/v2/sms/send",
        headers=key_headers,
        params={"numbers": "0701234567", "message_body": "metrics"},
    )
    assert result.status_code == 200, result.text
    after = samples(client)
    assert (
        value(after, count, route="/api/v2/sms/send")
        - value(before, count, route="/api/v2/sms/send")
        == 1
    )
    assert value(after, "smpp_bridge_redis_up") == 1
    assert value(after, "smpp_bridge_outbound_stream_length") == 1  # no worker runs here
    assert 0 <= value(after, "smpp_bridge_oldest_queued_seconds") < 60
    assert value(after, "smpp_bridge_receipt_log_length") == 0  # receipts not yet applied
    assert value(after, "smpp_bridge_receipt_dead_letters") == 0
    # the configured connection (the simulator: no [[smsc]]) reports no bound bind
    assert (
        "smpp_bridge_connection_binds_bound",
        (("connection", "simulator"),),
    ) in after
    assert value(after, "smpp_bridge_connection_binds_bound", connection="simulator") == 0


def test_rate_limit_refusals_and_failed_logins_are_counted(
    api_config, bridge_service, redis_client, demo_account
):
    client = _client(api_config.replace(rate_limit_per_minute=1), bridge_service, redis_client)
    headers = {"X-API-Key": demo_account.api_key}
    before = samples(client)
    assert client.simulate_get("/api/v2/account/balance", headers=headers).status_code == 200
    assert client.simulate_get("/api/v2/account/balance", headers=headers).status_code == 429
    wrong = basic(demo_account.username, "not-the-password")
    answer = client.simulate_post(
        "/v1/sms/send", headers=wrong, params={"numbers": "0701234567", "message_body": "x"}
    )
    assert answer.status_code == 401
    after = samples(client)
    limited = "smpp_bridge_rate_limited_total"
    assert value(after, limited, bucket="key") - value(before, limited, bucket="key") == 1
    failed = "smpp_bridge_failed_logins_total"
    assert (
        value(after, failed, reason="bad_credentials")
        - value(before, failed, reason="bad_credentials")
        == 1
    )


def test_only_the_operator_token_or_an_allowed_address_reads_it(
    api_config, bridge_service, redis_client
):
    closed = _client(api_config.replace(metrics_allow_networks=()), bridge_service, redis_client)
    refused = closed.simulate_get("/metrics")
    assert refused.status_code == 401
    assert refused.json["error"] == NO_TOKEN and "BRIDGE_OPERATOR_TOKEN" in refused.json["help"]

    with_token = _client(
        api_config.replace(metrics_allow_networks=(), operator_token=TOKEN),
        bridge_service,
        redis_client,
    )
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        answer = with_token.simulate_get("/metrics", headers=headers)
        assert answer.status_code == 401 and answer.json["error"] == BAD_TOKEN, headers
    assert samples(with_token, headers={"Authorization": f"Bearer {TOKEN}"})

    # the default allow-list: loopback without a token, another address needs it
    default = _client(api_config.replace(operator_token=TOKEN), bridge_service, redis_client)
    assert samples(default, remote_addr="127.0.0.1")
    assert samples(default, remote_addr="::1")
    assert default.simulate_get("/metrics", remote_addr="10.1.2.3").status_code == 401
    assert samples(default, remote_addr="10.1.2.3", headers={"Authorization": f"Bearer {TOKEN}"})
    lan = _client(
        api_config.replace(metrics_allow_networks=("10.0.0.0/8",)), bridge_service, redis_client
    )
    assert samples(lan, remote_addr="10.1.2.3")


def test_counters_are_served_while_redis_is_down(api_config, bridge_service):
    dead = redis.Redis(port=free_port(), socket_connect_timeout=0.2, socket_timeout=0.2)
    found = samples(_client(api_config, bridge_service, dead))
    assert value(found, "smpp_bridge_redis_up") == 0
    assert ("smpp_bridge_outbound_stream_length", ()) not in found
    assert any(name == REQUESTS for name, _ in found)


def test_metrics_is_not_a_customer_page_of_the_openapi_document(client):
    paths = client.simulate_get("/api/v2/openapi.json").json["paths"]
    assert "/metrics" not in paths


def _client(config, service, redis_client):
    from falcon import testing

    return testing.TestClient(create_app(config, service, redis_client))
