"""Our SMPP client session against smpp34's server (a Rust/tokio SMPP 3.4 implementation from
PyPI that we did not write), in its own process and virtualenv.

smpp34 logs binds, submits, our deliver_sm_resp statuses and ended sessions; it answers
enquire_link itself, so the evidence for that is ours: enquire_links sent, no reconnect.
"""

from __future__ import annotations

import threading

import pytest

from smpp.codec.message_id import canonical_id
from smpp.session.client import Session, SessionConfig, SessionState, SubmitRequest
from tests.harness.procs import wait_until
from tests.interop.conftest import issued_ids

pytestmark = pytest.mark.interop


def test_session_against_smpp34(smpp34_smsc):
    lock, receipts = threading.Lock(), []

    def on_receipt(receipt, info):
        with lock:
            receipts.append(receipt)

    config = SessionConfig(
        "127.0.0.1",
        smpp34_smsc.port,
        "interop",
        "secret",
        window=10,
        response_timeout=5.0,
        enquire_link_interval=0.2,
        reconnect_min=0.05,
        reconnect_max=0.5,
        name="smpp34",
    )
    session = Session(config, on_receipt=on_receipt)
    session.start()
    try:
        futures = [
            session.submit(SubmitRequest("12345", f"49155500{i:04d}", b"hi %d" % i, tag=i))
            for i in range(40)
        ]
        futures += session.submit_text("12345", "4915550999", "long " * 60, ref=9)
        outcomes = [f.result(timeout=15) for f in futures]
        assert {o.kind for o in outcomes} == {"ok"}
        ids = issued_ids(outcomes)
        by_id = {e["message_id"]: e["destination_addr"] for e in smpp34_smsc.events("submit_sm")}
        # Each future got the id smpp34 issued for that very PDU (matched by sequence number).
        assert [by_id[i] for i in ids[:40]] == [f"49155500{i:04d}" for i in range(40)]
        assert [
            e["esm_class"]
            for e in smpp34_smsc.events("submit_sm")
            if e["destination_addr"] == "4915550999"
        ] == [0x40, 0x40]  # UDH parts

        wait_until(lambda: len(receipts) == len(ids), timeout=10, message="every receipt")
        assert {canonical_id(r.message_id, "hex") for r in receipts} == {
            canonical_id(i, "hex") for i in ids
        }
        wait_until(
            lambda: len(smpp34_smsc.events("deliver_sm_resp")) == len(ids),
            timeout=10,
            message="every deliver_sm_resp",
        )
        assert {e["status"] for e in smpp34_smsc.events("deliver_sm_resp")} == {0}

        # Idle: our enquire_links were answered (else: a reconnect within response_timeout).
        wait_until(
            lambda: session.snapshot().counters.enquire_links >= 3,
            timeout=10,
            message="3 enquire_links",
        )
        assert session.state == SessionState.BOUND
        assert len(smpp34_smsc.events("bind")) == 1
    finally:
        assert session.stop(timeout=5)
    wait_until(lambda: smpp34_smsc.events("unbound"), message="smpp34 saw the session end")
    snap = session.snapshot()
    assert (snap.counters.reconnects, snap.counters.timeouts) == (0, 0)
    assert snap.last_error is None, snap.last_error
