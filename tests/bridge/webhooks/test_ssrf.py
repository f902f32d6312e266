"""The SSRF rules: refused without the allow-list, allowed with it, checked at delivery time
against the address actually connected to (a name that later resolves inward cannot pass)."""

from __future__ import annotations

import pytest

from bridge.redis import keys
from bridge.webhooks.ssrf import TargetRefused, check_target, resolve_target
from tests.bridge.webhooks.conftest import publish
from tests.harness.procs import wait_until

INWARD = [
    "http://127.0.0.1:8080/hook",
    "http://10.1.2.3/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://[fd00::1]/hook",
    "http://[fe80::1]/hook",
    "http://0.0.0.0/hook",
    "http://2130706433/hook",  # 127.0.0.1 as one decimal number
    "http://192.168.1.1/hook",
    "http://100.64.0.1/hook",
    "http://224.0.0.1/hook",
]


@pytest.mark.parametrize("url", INWARD)
def test_inward_addresses_are_refused(url):
    with pytest.raises(TargetRefused, match="not a public address"):
        check_target(url)


def test_a_name_resolving_inward_is_refused_unless_allowed():
    to_loopback = lambda host, port: ["127.0.0.1"]  # noqa: E731
    with pytest.raises(TargetRefused, match=r"localhost \(127.0.0.1\)"):
        check_target("http://localhost:9/x", resolver=to_loopback)
    with pytest.raises(TargetRefused, match=r"hooks.example \(127.0.0.1\)"):
        check_target("https://hooks.example/x", resolver=to_loopback)
    check_target("https://hooks.example/x", ["127.0.0.0/8"], resolver=to_loopback)
    mixed = lambda host, port: ["93.184.216.34", "10.0.0.7"]  # noqa: E731
    with pytest.raises(TargetRefused, match="10.0.0.7"):
        check_target("https://hooks.example/x", resolver=mixed)


@pytest.mark.parametrize(
    "url, allow",
    [
        ("http://127.0.0.1:8080/hook", "127.0.0.0/8"),
        ("http://10.1.2.3/hook", ["10.0.0.0/8"]),
        ("http://169.254.169.254/", "169.254.169.254/32"),
        ("http://[::1]/", "::1/128"),
    ],
)
def test_the_allow_list_lets_them_through(url, allow):
    check_target(url, allow)


@pytest.mark.parametrize(
    "url, match",
    [
        ("ftp://example.com/x", "http or https"),
        ("file:///etc/passwd", "http or https"),
        ("http:///nohost", "no host"),
        ("http://user:pw@example.com/", "user name or password"),
        ("http://example.com:99999/", "not a valid URL"),
        ("http://example.com:0/", "port 0"),  # was taken as port 80
        ("http://exa mple.com/", "not a valid host name"),  # was retried for 24 h, never sent
        ("http://exa<mple>.com/", "not a valid host name"),
        ("http://a..example.com/", "not a valid host name"),
        ("http://-a.example.com/", "not a valid host name"),
        (f"http://{'a' * 64}.example.com/", "not a valid host name"),
    ],
)
def test_malformed_targets_are_refused(url, match):
    with pytest.raises(TargetRefused, match=match):
        check_target(url, resolver=lambda h, p: ["93.184.216.34"])


@pytest.mark.parametrize(
    "url", ["http://bücher.example/x", "http://my_host.example.com/", "http://a-1.b2.example/"]
)
def test_valid_host_names_pass(url):
    check_target(url, resolver=lambda h, p: ["93.184.216.34"])


def test_public_targets_pass_and_keep_their_name():
    target = resolve_target(
        "https://Hooks.Example.com:8443/a?b=1", resolver=lambda h, p: ["93.184.216.34"]
    )
    assert (target.host, target.port, target.path) == ("hooks.example.com", 8443, "/a?b=1")
    assert target.addresses == ("93.184.216.34",)
    assert target.host_header == "hooks.example.com:8443"


def test_the_sender_refuses_at_delivery_without_the_allow_list(
    receiver, account, start_sender, redis_client
):
    account_id, _ = account()
    start_sender(webhook_allow_networks=())
    publish(redis_client, account_id, receiver.url(), n=1, message_id="m-ssrf")
    wait_until(lambda: redis_client.xlen(keys.webhooks_dead_key()) == 1)
    ((_, dead),) = redis_client.xrange(keys.webhooks_dead_key())
    assert b"not a public address (loopback)" in dead[b"reason"]
    assert receiver.requests == []


def test_a_name_that_turns_inward_after_the_send_is_refused_at_delivery(
    receiver, account, start_sender, redis_client
):
    account_id, _ = account()
    # at send time the name was public (the API's check passed); now it resolves to loopback
    start_sender(webhook_allow_networks=(), resolver=lambda host, port: ["127.0.0.1"])
    publish(redis_client, account_id, f"http://rebind.example:{receiver.port}/h", n=1)
    wait_until(lambda: redis_client.xlen(keys.webhooks_dead_key()) == 1)
    assert receiver.requests == []


def test_the_checked_address_is_the_one_connected_to_with_host_kept(
    receiver, account, start_sender, redis_client
):
    account_id, _ = account()
    start_sender(resolver=lambda host, port: ["127.0.0.1"])  # allow-list 127.0.0.0/8
    publish(redis_client, account_id, f"http://hooks.example.test:{receiver.port}/in", n=1)
    wait_until(lambda: len(receiver.accepted()) == 1)
    (request,) = receiver.accepted()
    assert request.headers["host"] == f"hooks.example.test:{receiver.port}"
    assert request.path == "/in"
