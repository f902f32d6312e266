"""What the SMSC sends the session: delivery receipts (also before their submit_sm_resp), MO
messages whole or in parts (any order, duplicates), data_sm, enquire_link, unknown commands,
and callbacks that fail."""

from __future__ import annotations

import threading

import pytest

from smpp.codec import build_submit_parts, pdu, status, tlv
from smpp.codec.message_id import canonical_id
from smpp.session.client import Session, SessionState, SubmitRequest
from smpp.simulator import ReceiptFirst, ReceiptShape
from smpp.simulator.scenarios import RECEIPT_SHAPES
from tests.harness.procs import wait_until
from tests.smpp.session.conftest import session_config
from tests.smpp.session.scripted import ScriptedSmsc, scripted_session

RX_T_APPN = 0x64
LONG = "Hello from a handset, in several parts: " + "0123456789 " * 30


def _request(i: int) -> SubmitRequest:
    return SubmitRequest("12345", f"4915550{i:04d}", b"message %d" % i, tag=i)


def test_receipts_reach_on_receipt_with_ids_that_match_the_submits(make_sim, session):
    sim = make_sim(
        message_id_format="hex",
        receipt_id_format="decimal",
        outcomes={"DELIVRD": 1, "UNDELIV": 1},
        seed=3,
    )
    s, sink = session(sim.port)
    outcomes = [s.submit(_request(i)).result(timeout=5) for i in range(20)]
    wait_until(lambda: len(sink.receipts) == 20, message="20 receipts")
    # The SMSC answers in hex and quotes decimal in receipts: normalised, they are the same set.
    assert {canonical_id(r.message_id, "dec") for r in sink.receipts} == {
        canonical_id(o.message_id, "hex") for o in outcomes
    }
    assert {r.stat for r in sink.receipts} == {"DELIVRD", "UNDELIV"}
    wait_until(lambda: not sim.unanswered_receipts, message="every receipt answered")
    assert {r.response_status for r in sim.receipts} == {0}
    assert s.snapshot().counters.receipts == 20


def test_receipt_before_its_submit_sm_resp(sim, session):
    sim.set_scenarios(ReceiptFirst())
    futures: list = []
    seen_before_response: list[bool] = []
    sink_receipts: list = []

    def on_receipt(receipt, info):  # runs on the session thread, before the response is read
        seen_before_response.append(not futures[-1].done())
        sink_receipts.append(receipt)

    s, _ = session(sim.port, on_receipt=on_receipt, window=1)
    for i in range(5):
        futures.append(s.submit(_request(i)))
        outcome = futures[-1].result(timeout=5)
        assert outcome.kind == "ok"
        assert sink_receipts[-1].message_id == outcome.message_id
    assert seen_before_response == [True] * 5


def test_failing_receipt_callback_answers_rx_t_appn_and_the_session_carries_on(sim, session):
    calls = []

    def on_receipt(receipt, info):
        calls.append(receipt)
        if len(calls) == 1:
            raise RuntimeError("database is down")

    s, _ = session(sim.port, on_receipt=on_receipt, window=1)
    for i in range(3):
        assert s.submit(_request(i)).result(timeout=5).kind == "ok"
    wait_until(
        lambda: len(sim.receipts) == 3 and not sim.unanswered_receipts,
        message="3 receipts answered",
    )
    assert [r.response_status for r in sim.receipts] == [RX_T_APPN, 0, 0]
    assert s.state == SessionState.BOUND and len(sim.binds) == 1
    assert s.snapshot().counters.callback_errors == 1


@pytest.mark.parametrize("method", [None, "udh", "udh16", "sar", "payload"])
def test_mo_messages_arrive_whole(sim, session, method):
    _, sink = session(sim.port)
    wait_until(lambda: sim.bound, message="bound")
    text = "short one" if method is None else LONG + "€"
    record = sim.send_mo("491700000001", "12345", text, method)
    wait_until(lambda: sink.mo, message="on_mo")
    (message,) = sink.mo
    assert (message.source, message.dest, message.text) == ("491700000001", "12345", text)
    assert message.parts == len(record.sequences)
    wait_until(lambda: sim.mo[0].acknowledged, message="every part answered")
    assert set(sim.mo[0].responses.values()) == {0}


def test_failing_mo_callback_answers_rx_t_appn_on_the_completing_part(sim, session):
    """The SMSC is asked to resend the last part; keeping the group for that resend is
    tested in test_mo_reassembly (undo_last)."""
    got = []

    def on_mo(message):
        got.append(message)
        if len(got) == 1:
            raise RuntimeError("queue unavailable")

    s, _ = session(sim.port, on_mo=on_mo)
    wait_until(lambda: sim.bound, message="bound")
    sim.send_mo("491700000001", "12345", LONG, "udh")
    wait_until(lambda: sim.mo[0].acknowledged, message="parts answered")
    assert list(sim.mo[0].responses.values())[-1] == RX_T_APPN
    assert s.snapshot().counters.callback_errors == 1


def _deliver(peer, part, source="491700000009") -> int:
    """Send one MO part as deliver_sm; returns its deliver_sm_resp status."""
    seq = peer.next_sequence()
    tlvs = dict(part.tlvs)
    peer.send(
        pdu.encode_deliver_sm(
            seq,
            pdu.ShortMessage(
                source_addr=source,
                destination_addr="12345",
                esm_class=part.esm_class,
                data_coding=part.data_coding,
                short_message=part.short_message,
                tlvs=tlvs,
            ),
        )
    )
    _, status, resp_seq, _ = peer.expect(pdu.DELIVER_SM_RESP)
    assert resp_seq == seq
    return status


def _until_unbind(peer) -> None:
    entry = peer.expect(pdu.UNBIND)
    peer.send(pdu.encode_unbind_resp(entry[2]))


def test_mo_parts_out_of_order_with_a_duplicate_data_sm_and_smsc_requests():
    answers: dict[str, object] = {}
    parts = build_submit_parts(LONG, method="udh16", ref=0xBEEF)
    assert len(parts) == 3
    sink: list = []
    done = threading.Event()

    def script(peer):
        answers["parts"] = [_deliver(peer, parts[i]) for i in (2, 0, 0, 1)]
        seq = peer.next_sequence()
        peer.send(
            pdu.encode_data_sm(
                seq,
                pdu.DataSm(
                    source_addr="491700000010",
                    destination_addr="12345",
                    tlvs={tlv.TAG_MESSAGE_PAYLOAD: b"via data sm"},
                ),
            )
        )
        answers["data_sm"] = peer.expect(pdu.DATA_SM_RESP)[1:3] == (0, seq)
        seq_el = peer.next_sequence()
        peer.send(pdu.encode_enquire_link(seq_el))
        answers["enquire_link"] = peer.expect(pdu.ENQUIRE_LINK_RESP)[1:3] == (0, seq_el)
        peer.send(pdu.encode_pdu(0x00000999, 0, 77))
        answers["unknown"] = peer.expect(pdu.GENERIC_NACK)[1:3]
        done.set()
        _until_unbind(peer)

    with ScriptedSmsc(script) as smsc:
        s = Session(session_config(smsc.port), on_receipt=lambda r, i: None, on_mo=sink.append)
        s.start()
        try:
            assert done.wait(10), f"script did not finish: {smsc.errors}"
        finally:
            assert s.stop(timeout=5)
    assert answers["parts"] == [0, 0, 0, 0]
    assert [(m.source, m.text, m.parts) for m in sink] == [
        ("491700000009", LONG, 3),
        ("491700000010", "via data sm", 1),
    ]
    assert answers["data_sm"] is True  # status 0, the data_sm's own sequence
    assert answers["enquire_link"] is True
    assert answers["unknown"] == (status.ESME_RINVCMDID, 77)
    assert smsc.connections == 1


def test_receipt_in_data_sm_and_unreadable_receipt_are_both_acknowledged():
    receipts: list = []
    statuses: dict[str, int] = {}
    done = threading.Event()

    def script(peer):
        seq = peer.next_sequence()
        peer.send(
            pdu.encode_data_sm(
                seq,
                pdu.DataSm(
                    source_addr="4915550001",
                    destination_addr="12345",
                    esm_class=0x04,
                    tlvs={
                        tlv.TAG_RECEIPTED_MESSAGE_ID: b"ABC123\0",
                        tlv.TAG_MESSAGE_STATE: b"\x02",
                    },
                ),
            )
        )
        statuses["data_sm"] = peer.expect(pdu.DATA_SM_RESP)[1]
        seq = peer.next_sequence()
        peer.send(
            pdu.encode_deliver_sm(
                seq,
                pdu.ShortMessage(
                    source_addr="4915550001",
                    destination_addr="12345",
                    esm_class=0x04,
                    short_message=b"this is not a receipt",
                ),
            )
        )
        statuses["garbled"] = peer.expect(pdu.DELIVER_SM_RESP)[1]
        done.set()
        _until_unbind(peer)

    with ScriptedSmsc(script) as smsc:
        s = Session(session_config(smsc.port), on_receipt=lambda r, i: receipts.append(r))
        s.start()
        try:
            assert done.wait(10), f"script did not finish: {smsc.errors}"
        finally:
            assert s.stop(timeout=5)
    assert statuses == {"data_sm": 0, "garbled": 0}
    assert [(r.message_id, r.stat) for r in receipts] == [("ABC123", "DELIVRD")]


def _receipt_pdu(seq: int, smsc_id: str) -> bytes:
    text = f"id:{smsc_id} sub:001 dlvrd:001 submit date:2401011200 done date:2401011201 "
    return pdu.encode_deliver_sm(
        seq,
        pdu.ShortMessage(
            source_addr="4915550001",
            destination_addr="12345",
            esm_class=0x04,
            short_message=(text + "stat:DELIVRD err:000 text:hi").encode(),
        ),
    )


@pytest.mark.parametrize("fail", [False, True])
def test_receipts_of_one_read_reach_on_receipts_in_one_call(fail):
    """Five deliver_sm in one TCP write (one read) are one on_receipts call, answered after it
    returns: all ESME_ROK, or all ESME_RX_T_APPN when it raised."""
    calls: list[list[str]] = []
    statuses: list[tuple[int, int]] = []
    done = threading.Event()

    def on_receipts(receipts, info):
        calls.append([r.message_id for r in receipts])
        if fail:
            raise ConnectionError("redis is down")

    def script(peer):
        seqs = [peer.next_sequence() for _ in range(5)]
        peer.send(b"".join(_receipt_pdu(seq, f"R{seq}") for seq in seqs))
        statuses.extend(peer.expect(pdu.DELIVER_SM_RESP)[1:3] for _ in seqs)
        done.set()
        _until_unbind(peer)

    with ScriptedSmsc(script) as smsc:
        s = Session(
            session_config(smsc.port), on_receipt=lambda r, i: None, on_receipts=on_receipts
        )
        s.start()
        try:
            assert done.wait(10), f"script did not finish: {smsc.errors}"
        finally:
            assert s.stop(timeout=5)
    seqs = [seq for _status, seq in statuses]
    assert calls == [[f"R{seq}" for seq in seqs]]  # one call, every receipt, in order
    assert {st for st, _seq in statuses} == {RX_T_APPN if fail else 0}
    assert s.snapshot().counters.receipts == (0 if fail else 5)


@pytest.mark.parametrize("shape", RECEIPT_SHAPES)
def test_receipts_shaped_as_other_smscs_send_them_name_their_own_message(make_sim, session, shape):
    """Text only, TLVs only, text in message_payload only, UCS-2 text, and a text whose id:
    names the previous message while the TLVs name this one (the TLV wins): each receipt
    reaches on_receipt with its own message's id and stat, and is answered 0."""
    sim = make_sim(scenarios=[ReceiptShape(shape=shape)], outcomes={"UNDELIV": 1})
    s, sink = session(sim.port, window=1)
    ids = []
    for i in range(3):  # one at a time: each receipt comes after the previous one's
        ids.append(s.submit(_request(i)).result(timeout=5).message_id)
        wait_until(lambda: len(sink.receipts) == len(ids), message=f"receipt {i}")
    assert [(r.message_id, r.stat, r.state) for r in sink.receipts] == [
        (message_id, "UNDELIV", "undelivered") for message_id in ids
    ]
    wait_until(lambda: not sim.unanswered_receipts, message="every receipt answered")
    assert [r.response_status for r in sim.receipts] == [0, 0, 0]
    if shape == "text-id-differs":  # the texts did name the previous message
        assert [r.text.split()[0] for r in sim.receipts] == ["id:0", f"id:{ids[0]}", f"id:{ids[1]}"]


def test_enquire_link_from_the_smsc_is_answered_while_the_window_is_full():
    """The window (2) is full and a third submit waits: the SMSC's enquire_link is still
    answered at once, before it answers any submit; then the waiting submit goes."""

    def probe_while_full(peer):
        seqs = [peer.expect(pdu.SUBMIT_SM)[2] for _ in range(2)]
        probe = peer.next_sequence()
        peer.send(pdu.encode_enquire_link(probe))
        command, _, seq, _ = peer.read()
        assert (command, seq) == (pdu.ENQUIRE_LINK_RESP, probe)
        for seq in seqs:
            peer.send(pdu.encode_submit_sm_resp(seq, f"ID{seq}"))
        peer.send(pdu.encode_submit_sm_resp(peer.expect(pdu.SUBMIT_SM)[2], "ID3"))
        peer.drain()

    with scripted_session(probe_while_full, window=2) as (s, smsc):
        futures = [s.submit(_request(i)) for i in range(3)]
        assert [f.result(timeout=5).kind for f in futures] == ["ok"] * 3
        assert smsc.commands()[:4] == [
            pdu.BIND_TRANSCEIVER,
            pdu.SUBMIT_SM,
            pdu.SUBMIT_SM,
            pdu.ENQUIRE_LINK_RESP,
        ]
        assert not smsc.errors and smsc.connections == 1
