"""`smpp-bridge run` with the demo: a send with a callback_url to a receiver on this machine
gets signed webhooks (verified with standardwebhooks and the account's secret from `account
show`) when the simulator's receipt arrives: `submitted` only with callback_events=all, the
final state always, each exactly once by its webhook-id."""

from __future__ import annotations

import collections
import json
import os
import re
import signal

import pytest
import requests
from standardwebhooks import Webhook

from bridge.redis import keys
from tests.api.helpers import pid_gone
from tests.bridge.webhooks.conftest import publish
from tests.harness.bridge_run import cli, kill_group, run_env, start_run, wait_banner
from tests.harness.procs import free_port, wait_until
from tests.harness.webhook_receiver import receiver

pytestmark = pytest.mark.slow


def test_run_posts_signed_webhooks_for_the_demo(tmp_path):
    port = free_port()
    env = run_env(tmp_path, port)
    proc, out = start_run(tmp_path, env)
    pids: list[int] = []
    try:
        with receiver() as hooks:
            started = wait_banner(proc, out)
            assert {"simulator", "worker", "webhooks"} <= set(started), out.text()
            pids = list(started.values())
            [key] = re.findall(r"Demo API key: (\S+)", out.text())
            shown = cli(tmp_path, env, "account", "show", "demo")
            [secret] = re.findall(r"webhook secret: (whsec_\S+)", shown)
            sent = {}
            for events in ("all", "final"):
                r = requests.post(
                    f"http://127.0.0.1:{port}/api/v2/sms/send",
                    headers={"X-API-Key": key},
                    data={
                        "numbers": "0701234567",
                        "message_body": "Hello",
                        "callback_url": hooks.url(f"/{events}"),
                        "callback_events": events,
                    },
                    timeout=30,
                )
                assert r.status_code == 200, r.text
                sent[events] = r.json()["messages"][0]["message_id"]
            wait_until(
                lambda: len({q.headers["webhook-id"] for q in hooks.accepted()}) >= 3,
                timeout=60,
                message="three webhooks (submitted+delivered, delivered)",
            )
            verify = Webhook(secret)
            got: dict[str, list[str]] = {"/all": [], "/final": []}
            for q in hooks.accepted():
                event = verify.verify(q.body, q.headers)  # raises if the signature is wrong
                assert event == json.loads(q.body) and event["id"] == q.headers["webhook-id"]
                assert event["data"]["message_id"] == sent[q.path.strip("/")]
                if event["id"] not in [e for e in got[q.path]]:
                    got[q.path].append(event["id"])
            mid_all, mid_final = sent["all"], sent["final"]
            assert sorted(got["/all"]) == sorted(
                [f"evt_{mid_all}_submitted", f"evt_{mid_all}_delivered"]
            )
            assert got["/final"] == [f"evt_{mid_final}_delivered"]
            status = requests.get(
                f"http://127.0.0.1:{port}/api/v2/sms/{mid_final}",
                headers={"X-API-Key": key},
                timeout=30,
            ).json()
            assert status["state"] == "delivered"
            wait_until(
                lambda: requests.get(
                    f"http://127.0.0.1:{port}/api/v2/sms/{mid_final}",
                    headers={"X-API-Key": key},
                    timeout=30,
                ).json()["webhook_attempts"],
                timeout=30,
                message="the attempt listed",
            )
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0, out.text()
    finally:
        kill_group(proc)
    wait_until(lambda: all(pid_gone(p) for p in pids), timeout=15, message=f"{pids} gone")


def test_run_with_two_senders_loses_nothing_when_one_is_sigkilled(tmp_path, redis_server):
    """BRIDGE_WEBHOOK_PROCESSES=2: `run` starts webhooks and webhooks-2 in one consumer group;
    webhooks-2 SIGKILLed while it holds events is restarted, what it held is claimed once idle,
    and every event reaches the receiver, signed, repeated only if the dead one held it."""
    port = free_port()
    env = run_env(
        tmp_path,
        port,
        REDIS_URL=redis_server.url,
        BRIDGE_WEBHOOK_PROCESSES="2",
        BRIDGE_WEBHOOK_CLAIM_IDLE="1",
        BRIDGE_WEBHOOK_BACKOFF_BASE="0.05",
    )
    proc, out = start_run(tmp_path, env, "--skip", "worker", "--skip", "simulator")
    redis = redis_server.client()
    try:
        with receiver() as hooks:
            started = wait_banner(proc, out)
            assert {"webhooks", "webhooks-2"} <= set(started), out.text()
            shown = cli(tmp_path, env, "account", "show", "demo")
            [secret] = re.findall(r"webhook secret: (whsec_\S+)", shown)
            [account_id] = re.findall(r"^id: (\d+)$", shown, re.M)
            hooks.delay = 0.01  # slow enough that the kill lands while both hold events
            ids = publish(redis, int(account_id), hooks.url(), n=N_KILLED)
            victim = started["webhooks-2"]
            wait_until(
                lambda: len(hooks.accepted()) >= 60 and _pending_of(redis, victim),
                timeout=60,
                message="60 delivered while webhooks-2 holds events",
            )
            os.kill(victim, signal.SIGKILL)
            held = _pending_of(redis, victim)  # claimed by the others only once 1 s idle
            assert held, "webhooks-2 died holding events"
            wait_until(
                lambda: len(re.findall(r"started webhooks-2 \(pid", out.text())) == 2,
                timeout=30,
                message="webhooks-2 restarted",
            )
            wait_until(
                lambda: set(hooks.accepted_ids()) == set(ids), timeout=90, message="all events"
            )
            wait_until(
                lambda: (
                    redis.xpending(keys.webhooks_stream_key(), keys.WEBHOOKS_GROUP)["pending"] == 0
                ),
                message="nothing pending",
            )
            counts = collections.Counter(hooks.accepted_ids())
            assert set(counts) == set(ids)
            assert sum(c - 1 for c in counts.values()) <= held  # only what the victim held
            verify = Webhook(secret)
            for request in hooks.accepted():
                verify.verify(request.body, request.headers)
            assert redis.xlen(keys.webhooks_dead_key()) == 0
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0, out.text()
    finally:
        redis.close()
        kill_group(proc)


N_KILLED = 400  # events published for the kill test


def _pending_of(redis, pid: int) -> int | None:
    """Entries pending for the consumer of process ``pid`` (its name is host-pid-rand)."""
    summary = redis.xpending(keys.webhooks_stream_key(), keys.WEBHOOKS_GROUP)
    for consumer in summary["consumers"]:
        name = (
            consumer["name"].decode() if isinstance(consumer["name"], bytes) else consumer["name"]
        )
        if f"-{pid}-" in name:
            return int(consumer["pending"]) or None
    return None
