"""Mobile-originated messages to bound receivers, and what the simulator records."""

from __future__ import annotations

import pytest

from smpp.codec import build_submit_parts, decode, parse_concat, pdu, tlv
from smpp.simulator import SimulatorError
from tests.harness.procs import wait_until

LONG = "Mobile originated text that is long enough to need three parts. " * 5  # 320 chars


def _read_mo(client, count: int) -> list[pdu.ShortMessage]:
    bodies = []
    for _ in range(count):
        deliver = client.read()
        assert deliver.command_id == pdu.DELIVER_SM
        client.send(pdu.encode_deliver_sm_resp(deliver.sequence_number))
        bodies.append(deliver.body)
    return bodies


def _part_seq(short_message: bytes) -> int:
    """The part number in a UDH-concatenated part's header."""
    info = parse_concat(short_message, 0x40, {})[0]
    assert info is not None, f"no concatenation header in {short_message!r}"
    return info.seq


def _reassemble(bodies: list[pdu.ShortMessage]) -> str:
    parts = {}
    for body in bodies:
        info, data = parse_concat(body.short_message, body.esm_class, body.tlvs)
        assert info is not None and info.total == len(bodies)
        parts[info.seq] = data
    return decode(b"".join(parts[i] for i in sorted(parts)), bodies[0].data_coding)


def test_plain_mo_reaches_a_bound_receiver(simulator, esme):
    receiver = esme(simulator)
    receiver.bind("receiver", system_id="acct")
    record = simulator.send_mo("254700000001", "12345", "Hi there €")
    [body] = _read_mo(receiver, 1)
    assert (body.source_addr, body.destination_addr, body.esm_class) == ("254700000001", "12345", 0)
    assert (body.source_addr_ton, body.source_addr_npi) == (1, 1)
    assert decode(body.short_message, body.data_coding) == "Hi there €"
    assert record.bind_id == simulator.binds[0].id and record.system_id == "acct"
    wait_until(lambda: simulator.mo[0].acknowledged)


@pytest.mark.parametrize("method,esm_class", [("udh", 0x40), ("sar", 0x00)])
def test_concatenated_mo_arrives_in_parts(simulator, esme, method, esm_class):
    receiver = esme(simulator)
    receiver.bind("transceiver")
    record = simulator.send_mo("254700000002", "12345", LONG, parts_method=method)
    bodies = _read_mo(receiver, 3)
    assert {b.esm_class for b in bodies} == {esm_class}
    assert _reassemble(bodies) == LONG
    assert len(record.sequences) == 3
    wait_until(lambda: simulator.mo[0].responses == {s: 0 for s in record.sequences})


def test_mo_goes_to_the_requested_system_id_and_needs_a_receiver(simulator, esme):
    transmitter = esme(simulator)
    transmitter.bind("transmitter", system_id="a")
    with pytest.raises(SimulatorError, match="no receiver"):
        simulator.send_mo("1", "2", "x")
    first, second = esme(simulator), esme(simulator)
    first.bind("receiver", system_id="a")
    second.bind("receiver", system_id="b")
    simulator.send_mo("1", "2", "to b", system_id="b")
    assert _read_mo(second, 1)[0].short_message == b"to b"
    with pytest.raises(ValueError, match="parts_method"):
        simulator.send_mo("1", "2", LONG)  # too long for one PDU without concatenation


def _submit_parts(client, text: str, method: str) -> list[str]:
    ids = []
    for part in build_submit_parts(text, method=method, ref=42):
        resp = client.submit(
            dest="254700000003",
            text=part.short_message,
            esm_class=part.esm_class,
            data_coding=part.data_coding,
            tlvs=dict(part.tlvs),
        )
        assert resp.command_status == 0
        ids.append(resp.body[0])
    return ids


@pytest.mark.parametrize(
    "method,concat", [("udh", "udh"), ("udh16", "udh"), ("sar", "sar"), ("payload", "payload")]
)
def test_submitted_parts_are_recorded_as_one_text(simulator, esme, method, concat):
    client = esme(simulator)
    client.bind("transmitter", system_id="acct")
    text = LONG + " Ünïcödé ✓" if method == "udh" else LONG
    ids = _submit_parts(client, text, method)
    [message] = simulator.messages
    assert message.text == text
    assert message.message_ids == tuple(ids)
    assert (message.concat, message.parts) == (concat, len(ids))
    assert (message.system_id, message.destination_addr) == ("acct", "254700000003")
    assert message.outcomes == ("DELIVRD",) * len(ids)
    assert len(simulator.pdus("submit_sm")) == len(ids)


def test_data_sm_is_accepted_and_recorded(simulator, esme):
    client = esme(simulator)
    client.bind()
    resp = client.request(
        pdu.encode_data_sm(
            client.next_seq(),
            pdu.DataSm(
                source_addr="ACME",
                destination_addr="254700000004",
                registered_delivery=1,
                tlvs={tlv.TAG_MESSAGE_PAYLOAD: b"via data-sm"},
            ),
        )
    )
    assert resp.command_id == pdu.DATA_SM_RESP and resp.command_status == 0
    deliver, _ = client.read_until(pdu.DELIVER_SM)
    assert b"text:via data-sm" in deliver.body.short_message
    assert [(m.text, m.concat) for m in simulator.messages] == [("via data-sm", "payload")]


def test_incomplete_messages_are_listed_apart(simulator, esme):
    client = esme(simulator)
    client.bind()
    part = build_submit_parts(LONG, method="udh", ref=9)[1]
    client.submit(text=part.short_message, esm_class=part.esm_class)
    assert simulator.messages == []
    [partial] = simulator.incomplete_messages
    assert not partial.complete and partial.parts == 1


def test_records_are_bounded_but_counters_are_not(make_simulator, esme):
    sim = make_simulator(record_limit=5)
    client = esme(sim)
    client.bind()
    for i in range(12):
        client.send(client.submit_frame(text=b"m%d" % i, registered_delivery=1))
    client.enquire()
    assert [m.text for m in sim.messages] == ["m7", "m8", "m9", "m10", "m11"]
    [bind] = sim.binds
    assert bind.pdus_received == 14 and len(bind.pdus) == 5
    assert len(sim.receipts) == 5
    counters = sim.counters
    assert counters["accepted"] == 12 and counters["receipts_sent"] == 12
    sim.clear_records()
    assert sim.messages == [] and sim.binds[0].pdus == []


def test_pdu_records_carry_decoded_bodies_and_answers(simulator, esme):
    client = esme(simulator)
    client.bind(system_id="acct", password="pw")
    client.submit(dest="254700000005", text=b"abc", registered_delivery=1, data_coding=3)
    client.enquire()
    records = simulator.pdus(system_id="acct")
    assert [r["command"] for r in records] == ["bind_transceiver", "submit_sm", "enquire_link"]
    submit = records[1]
    assert submit["body"].data_coding == 3 and submit["body"].short_message == b"abc"
    assert (submit["status"], submit["answer"], submit["sequence"]) == (0, 0, 2)
    assert simulator.pdus(system_id="nobody") == []


def test_mo_parts_in_any_order_with_repeats_and_redelivery_of_refused_parts(simulator, esme):
    receiver = esme(simulator)
    receiver.bind("receiver")
    simulator.send_mo("254700000006", "12345", LONG, parts_method="udh", order=[2, 0, 2])
    seqs = []
    for answer in (0, 0x64, 0):  # the second deliver_sm (part 0) is refused: ESME_RX_T_APPN
        deliver = receiver.read()
        receiver.send(pdu.encode_deliver_sm_resp(deliver.sequence_number, answer))
        seqs.append(_part_seq(deliver.body.short_message))
    assert seqs == [3, 1, 3]
    wait_until(lambda: len(simulator.mo[0].responses) == 3)
    # parts 1 (refused) and 2 (never sent) go again; part 3 was acknowledged
    assert len(simulator.resend_mo()) == 2
    again = _read_mo(receiver, 2)
    assert [_part_seq(b.short_message) for b in again] == [1, 2]
    wait_until(lambda: simulator.mo[0].acknowledged)
    assert simulator.resend_mo() == [] and len(simulator.mo[0].sequences) == 5
    with pytest.raises(ValueError, match="parts 0..2"):
        simulator.send_mo("1", "2", LONG, parts_method="udh", order=[3])
