"""`smpp-bridge run` with the demo: a send with a callback_url to a receiver on this machine
gets signed webhooks (verified with standardwebhooks and the account's secret from `account
show`) when the simulator's receipt arrives: `submitted` only with callback_events=all, the
final state always, each exactly once by its webhook-id."""

from __future__ import annotations

import json
import re
import signal
import subprocess

import pytest
import requests
from standardwebhooks import Webhook

from tests.api.helpers import pid_gone
from tests.harness.bridge_run import SMPP_BRIDGE, kill_group, run_env, start_run
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
            wait_until(
                lambda: out.find("Press Ctrl-C to stop.") or proc.poll() is not None,
                timeout=120,
                message="smpp-bridge run to print its banner",
            )
            assert proc.poll() is None, out.text()
            started = dict(re.findall(r"started ([\w-]+) \(pid (\d+)\)", out.text()))
            assert {"simulator", "worker", "webhooks"} <= set(started), out.text()
            pids = [int(p) for p in started.values()]
            [key] = re.findall(r"Demo API key: (\S+)", out.text())
            shown = subprocess.run(
                [SMPP_BRIDGE, "account", "show", "demo"],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
            ).stdout
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
