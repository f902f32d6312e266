"""Our SMPP client session against node-smpp's server (software we did not write, from npm).

What node-smpp logs is the evidence: the binds, submit_sm PDUs and deliver_sm_resp statuses it
saw, its enquire_link / data_sm answered by us, our enquire_link, and our unbind.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from smpp.codec.message_id import canonical_id
from smpp.session.client import (
    MoMessage,
    Receipt,
    Session,
    SessionConfig,
    SessionInfo,
    SessionState,
    SubmitRequest,
    requests_for_text,
)
from tests.harness.procs import wait_until
from tests.interop.conftest import PASSWORD, SYSTEM_ID, issued_ids

pytestmark = pytest.mark.interop


class Collector:
    """Receipts and MO messages as the session's callbacks hand them over."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.receipts: list[tuple[Receipt, SessionInfo]] = []
        self.mo: list[MoMessage] = []
        self.states: list[SessionState] = []

    def on_receipt(self, receipt, info):
        with self.lock:
            self.receipts.append((receipt, info))

    def on_mo(self, message):
        with self.lock:
            self.mo.append(message)


def _config(port: int, **overrides) -> SessionConfig:
    defaults: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "system_id": SYSTEM_ID,
        "password": PASSWORD,
        "window": 10,
        "response_timeout": 5.0,
        "enquire_link_interval": 0.3,
        "reconnect_min": 0.05,
        "reconnect_max": 0.5,
        "name": "node-smpp",
    }
    return SessionConfig(**(defaults | overrides))


def _session(config: SessionConfig, sink: Collector) -> Session:
    return Session(
        config, on_receipt=sink.on_receipt, on_mo=sink.on_mo, on_state=sink.states.append
    )


@pytest.mark.parametrize("bind_mode", ["transceiver", "pair"])
def test_submit_window_receipts_enquire_link_and_unbind(node_smsc, bind_mode):
    sink = Collector()
    session = _session(_config(node_smsc.port, bind_mode=bind_mode), sink)
    session.start()
    try:
        futures = [
            session.submit(SubmitRequest("12345", f"49155500{i:04d}", b"hi %d" % i, tag=i))
            for i in range(40)
        ]
        futures += session.submit_text("12345", "4915550999", "long " * 60, ref=7, tag="long")
        outcomes = [f.result(timeout=15) for f in futures]
        assert [o.kind for o in outcomes] == ["ok"] * len(futures)
        assert [o.tag for o in outcomes[:40]] == list(range(40))
        ids = set(issued_ids(outcomes))
        assert len(ids) == len(futures)

        # node-smpp saw every submit_sm, with the ids it issued and the multipart UDH flag.
        submitted = node_smsc.events("submit_sm")
        assert {e["message_id"] for e in submitted} == ids
        assert [e["esm_class"] for e in submitted][-2:] == [0x40, 0x40]

        # A receipt for every message, matched by canonical id, each acknowledged with 0.
        wait_until(
            lambda: len(sink.receipts) == len(futures), timeout=10, message="a receipt per message"
        )
        assert {canonical_id(r.message_id, "hex") for r, _ in sink.receipts} == {
            canonical_id(i, "hex") for i in ids
        }
        assert {r.stat for r, _ in sink.receipts} == {"DELIVRD"}
        assert all(info.name == "node-smpp" for _, info in sink.receipts)
        wait_until(
            lambda: len(node_smsc.events("deliver_sm_resp")) == len(futures),
            timeout=10,
            message="deliver_sm_resp for every receipt",
        )
        assert {e["status"] for e in node_smsc.events("deliver_sm_resp")} == {0}

        # node-smpp's own enquire_link and data_sm (an MO) were answered; the MO reached on_mo.
        wait_until(lambda: node_smsc.events("data_sm_resp"), message="data_sm_resp")
        assert [e["status"] for e in node_smsc.events("enquire_link_resp")] == [0]
        assert [e["status"] for e in node_smsc.events("data_sm_resp")] == [0]
        assert [(m.source, m.dest, m.text) for m in sink.mo] == [
            ("4915550001", "12345", "hello from node-smpp")
        ]

        # Idle for longer than enquire_link_interval: we sent enquire_link, got the resp and
        # stayed bound on the same connection(s).
        wait_until(lambda: node_smsc.events("enquire_link"), timeout=5, message="our enquire_link")
        assert session.state == SessionState.BOUND
        binds = [e["event"] for e in node_smsc.events() if e["event"].startswith("bind_")]
        assert binds == (
            ["bind_transceiver"]
            if bind_mode == "transceiver"
            else ["bind_transmitter", "bind_receiver"]
        )
    finally:
        assert session.stop(timeout=5)
    assert len(node_smsc.events("unbind")) == (1 if bind_mode == "transceiver" else 2)
    assert session.snapshot().counters.reconnects == 0
    assert sink.states[:2] == [SessionState.CONNECTING, SessionState.BOUND]
    assert sink.states[-2:] == [SessionState.UNBINDING, SessionState.DOWN]


def test_wrong_password_is_refused_once_and_not_retried(node_smsc):
    sink = Collector()
    session = _session(_config(node_smsc.port, password="wrong"), sink)
    session.start()
    try:
        wait_until(
            lambda: session.state == SessionState.BIND_REFUSED, timeout=10, message="bind_refused"
        )
        outcome = session.submit(SubmitRequest("1", "491555", b"x")).result(timeout=5)
        assert (outcome.kind, outcome.written) == ("not_sent", False)
        last_error = session.snapshot().last_error
        assert last_error is not None and "credentials" in last_error
    finally:
        assert session.stop(timeout=5)
    assert len(node_smsc.events("bind_transceiver")) == 1
    assert session.snapshot().counters.bind_attempts == 1


def test_requests_for_text_reach_node_smpp_as_sar(node_smsc):
    """SAR-concatenated parts: node-smpp takes them; no UDH flag on the wire."""
    sink = Collector()
    session = _session(_config(node_smsc.port, concat_method="sar"), sink)
    session.start()
    try:
        requests = requests_for_text("12345", "4915550100", "x" * 300, method="sar", ref=300)
        outcomes = [session.submit(r).result(timeout=10) for r in requests]
        assert [o.kind for o in outcomes] == ["ok", "ok"]
        assert [e["esm_class"] for e in node_smsc.events("submit_sm")] == [0, 0]
    finally:
        assert session.stop(timeout=5)
