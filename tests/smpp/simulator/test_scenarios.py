"""Each scenario's observable effect on the wire, and switching scenarios at runtime.

Without sleeping: responses on one connection leave in order, so once the enquire_link_resp
sent after a batch has arrived, every answer to that batch that will ever come has come.
"""

from __future__ import annotations

import time

import pytest

from smpp.codec import pdu, tlv
from smpp.codec.status import by_name
from smpp.simulator import (
    Latency,
    RejectPrefix,
    ScenarioError,
    Simulator,
    SimulatorConfig,
    Throttle,
    parse_scenario,
)
from tests.harness.procs import wait_until

RTHROTTLED = by_name("ESME_RTHROTTLED").code
RMSGQFUL = by_name("ESME_RMSGQFUL").code
RINVDSTADR = by_name("ESME_RINVDSTADR").code
RBINDFAIL = by_name("ESME_RBINDFAIL").code


def _burst(client, count: int, **fields) -> dict[int, int]:
    """Pipeline ``count`` submits, then an enquire_link: {submit seq: resp status} of those
    answered."""
    seqs = []
    for _ in range(count):
        frame = client.submit_frame(**fields)
        seqs.append(pdu.decode_header(frame).sequence_number)
        client.send(frame)
    client.send(pdu.encode_enquire_link(client.next_seq()))
    _, before = client.read_until(pdu.ENQUIRE_LINK_RESP)
    return {
        p.sequence_number: p.command_status
        for p in before
        if p.command_id == pdu.SUBMIT_SM_RESP and p.sequence_number in seqs
    }


def _bound(sim, esme, kind="transceiver"):
    client = esme(sim)
    assert client.bind(kind).command_status == 0
    return client


def test_latency_holds_each_response(make_simulator, esme):
    sim = make_simulator(scenarios=["latency:ms=150"])
    client = _bound(sim, esme)
    started = time.monotonic()
    assert client.submit().command_status == 0
    assert time.monotonic() - started >= 0.15
    sim.set_scenarios("latency:ms=150", "reject-prefix:prefixes=9")
    started = time.monotonic()
    assert client.submit(dest="9").command_status == RINVDSTADR  # refusals are slow too
    assert time.monotonic() - started >= 0.15
    assert client.enquire().command_status == 0  # enquire_link is not held


def test_throttle_answers_rthrottled_beyond_the_rate_and_can_be_switched_off(make_simulator, esme):
    sim = make_simulator(scenarios=[Throttle(tps=0.01, burst=3)])
    client = _bound(sim, esme)
    answers = _burst(client, 8)
    assert sorted(answers.values()) == [0, 0, 0] + [RTHROTTLED] * 5
    sim.set_scenarios()
    assert set(_burst(client, 8).values()) == {0}
    sim.set_scenarios("throttle:tps=0.01,burst=1")
    assert sorted(_burst(client, 3).values()) == [0, RTHROTTLED, RTHROTTLED]
    assert len(sim.messages) == 3 + 8 + 1


def test_msgqful_bursts_come_at_a_fixed_rhythm(make_simulator, esme):
    sim = make_simulator(scenarios=["msgqful:every=3,burst=2"])
    answers = _burst(_bound(sim, esme), 10)
    assert [answers[s] for s in sorted(answers)] == [0, 0, 0, RMSGQFUL, RMSGQFUL] * 2


def test_reject_prefix_refuses_chosen_destinations(make_simulator, esme):
    sim = make_simulator(scenarios=["reject-prefix:prefixes=25479+25471"])
    client = _bound(sim, esme)
    assert client.submit(dest="254790000001").command_status == RINVDSTADR
    assert client.submit(dest="254710000001").command_status == RINVDSTADR
    assert client.submit(dest="254720000001").command_status == 0
    assert [m.destination_addr for m in sim.messages] == ["254720000001"]
    assert [p["answer"] for p in sim.pdus("submit_sm")] == [RINVDSTADR, RINVDSTADR, 0]


def test_silent_never_answers_every_nth_submit(make_simulator, esme):
    sim = make_simulator(scenarios=["silent:every=2"])
    client = _bound(sim, esme)
    answers = _burst(client, 6, registered_delivery=1)
    first = min(answers)
    assert sorted(answers) == [first, first + 2, first + 4]
    assert [p["answer"] for p in sim.pdus("submit_sm")] == [0, None] * 3
    assert len(sim.receipts) == 3 and len(sim.messages) == 3


def test_drop_after_closes_the_connection_after_n_pdus(make_simulator, esme):
    sim = make_simulator(scenarios=["drop-after:pdus=3"])
    client = _bound(sim, esme)
    assert client.submit().command_status == 0
    client.send(client.submit_frame())  # the 3rd PDU: answered, then the connection closes
    client.send(client.submit_frame())
    resp = client.read()
    assert resp.command_id == pdu.SUBMIT_SM_RESP
    assert client.closed_by_peer()
    [record] = wait_until(lambda: [b for b in sim.binds if not b.open])
    assert record.pdus_received in (3, 4) and record.unbound_by is None


def _recv_exactly(sock, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        assert chunk, "connection closed early"
        data += chunk
    return data


@pytest.mark.parametrize(
    "kind,raw_hex",
    [
        ("truncated", ("000000120000000500000000000000010001")),  # deliver_sm, 2-octet body
        ("unknown-command", ("00000010000009990000000000000001")),  # command id 0x999
        ("bad-length", ("00000008000000050000000000000001")),  # command_length=8 < 16
        ("huge-length", ("7fffffff000000050000000000000001")),  # 2 GiB promised, none sent
        # submit_sm_resp, status 0, sequence 0x7FFFFFFE (never the ESME's), id "STRAY"
        ("stray-resp", ("0000001680000004000000007ffffffe535452415900")),
    ],
)
def test_malformed_pdu_is_sent_once_after_n_pdus(make_simulator, esme, kind, raw_hex):
    sim = make_simulator(scenarios=[f"malformed:after=2,kind={kind}"])
    client = _bound(sim, esme)
    client.send(pdu.encode_enquire_link(7))  # the 2nd PDU
    raw = _recv_exactly(client.sock, 16 + len(raw_hex) // 2)
    assert raw[:16] == pdu.encode_enquire_link_resp(7)
    assert raw[16:] == bytes.fromhex(raw_hex)
    if kind not in (
        "bad-length",
        "huge-length",
    ):  # a good client answers and carries on; the SMSC does not repeat
        client.send(pdu.encode_generic_nack(1, 2))
        assert client.enquire().command_status == 0
        assert client.enquire().command_status == 0
        assert [p["status"] for p in sim.pdus("generic_nack")] == [2]


def test_refuse_binds_all_or_the_first_few(make_simulator, esme):
    sim = make_simulator(scenarios=["refuse-binds:count=2"])
    statuses = [esme(sim).bind().command_status for _ in range(3)]
    assert statuses == [RBINDFAIL, RBINDFAIL, 0]
    sim.set_scenarios("refuse-binds")
    assert esme(sim).bind().command_status == RBINDFAIL


def test_receipt_first_sends_the_receipt_before_the_resp(make_simulator, esme):
    sim = make_simulator(scenarios=["receipt-first"])
    client = _bound(sim, esme)
    client.send(client.submit_frame(registered_delivery=1))
    first, second = client.read(), client.read()
    assert first.command_id == pdu.DELIVER_SM and second.command_id == pdu.SUBMIT_SM_RESP
    assert pdu.tlv_to_str(first.body.tlvs[tlv.TAG_RECEIPTED_MESSAGE_ID]) == second.body[0]


def test_unbind_after_sends_unbind_from_the_smsc(make_simulator, esme):
    sim = make_simulator(scenarios=["unbind-after:pdus=2"])
    client = _bound(sim, esme)
    client.send(client.submit_frame())
    unbind, _ = client.read_until(pdu.UNBIND)
    client.send(pdu.encode_unbind_resp(unbind.sequence_number))
    assert client.closed_by_peer()


def test_outcome_prefix_overrides_the_mix(make_simulator, esme):
    sim = make_simulator(scenarios=["outcome:prefixes=25479,stat=REJECTD"])
    client = _bound(sim, esme, "transmitter")
    client.submit(dest="254790000000")
    client.submit(dest="254700000000")
    assert [m.outcome for m in sim.messages] == ["REJECTD", "DELIVRD"]


def test_periodic_mo_reaches_a_receiver(make_simulator, esme):
    sim = make_simulator(scenarios=["mo:every=0.05,text=ping,count=2,source=254700000009"])
    receiver = _bound(sim, esme, "receiver")
    for _ in range(2):
        deliver = receiver.read()
        assert deliver.command_id == pdu.DELIVER_SM
        assert (deliver.body.short_message, deliver.body.source_addr) == (b"ping", "254700000009")
        receiver.send(pdu.encode_deliver_sm_resp(deliver.sequence_number))
    wait_until(lambda: [r.acknowledged for r in sim.mo] == [True, True])


def test_scenarios_compose_in_the_order_given(make_simulator, esme):
    sim = make_simulator(scenarios=["reject-prefix:prefixes=999", "silent"])
    client = _bound(sim, esme)
    assert client.submit(dest="999").command_status == RINVDSTADR  # rejected before silence
    assert _burst(client, 2) == {}


@pytest.mark.parametrize(
    "spec,message",
    [
        ("nope", "unknown scenario 'nope'"),
        ("throttle:rate=5", "it takes tps=..."),
        ("throttle:tps=fast", "tps='fast'"),
        ("malformed:kind=odd", "use truncated"),
        ("outcome:stat=GONE", "not a receipt stat"),
        ("throttle:status=ESME_RNOPE", "unknown SMPP"),
    ],
)
def test_bad_scenario_specs_say_what_is_allowed(spec, message):
    with pytest.raises(ScenarioError, match=message):
        Simulator(SimulatorConfig(scenarios=(spec,)))


def test_specs_parse_into_scenarios():
    assert parse_scenario("latency:ms=5") == Latency(ms=5.0)
    throttle = parse_scenario("throttle:tps=100,status=0x14")
    assert isinstance(throttle, Throttle) and throttle.status == RMSGQFUL
    reject = parse_scenario("reject-prefix:prefixes=+25479|25471")
    assert isinstance(reject, RejectPrefix) and reject.prefixes == ("25479", "25471")


@pytest.mark.parametrize(
    "shape, coding, has_text, tlv_tags",
    [
        ("text-only", 0, True, set()),
        ("tlv-only", 0, False, {tlv.TAG_RECEIPTED_MESSAGE_ID, tlv.TAG_MESSAGE_STATE}),
        ("payload", 0, False, {tlv.TAG_MESSAGE_PAYLOAD}),
        ("ucs2", 8, True, set()),
        ("text-id-differs", 0, True, {tlv.TAG_RECEIPTED_MESSAGE_ID, tlv.TAG_MESSAGE_STATE}),
    ],
)
def test_receipt_shape_changes_the_receipts_body(
    make_simulator, esme, shape, coding, has_text, tlv_tags
):
    sim = make_simulator(scenarios=[f"receipt-shape:shape={shape}"])
    client = _bound(sim, esme)
    ids = [client.submit(registered_delivery=1).body[0] for _ in range(2)]
    bodies = [client.read_until(pdu.DELIVER_SM)[0].body for _ in ids]
    for message_id, body in zip(ids, bodies, strict=True):
        assert (body.esm_class, body.data_coding, set(body.tlvs)) == (0x04, coding, tlv_tags)
        assert bool(body.short_message) == has_text
        text = body.tlvs.get(tlv.TAG_MESSAGE_PAYLOAD) or body.short_message
        text = text.decode("utf-16-be" if coding == 8 else "ascii")
        named = text.split()[0] if text else None
        if shape == "text-id-differs":  # the text names the previous message, the TLV this one
            assert body.tlvs[tlv.TAG_RECEIPTED_MESSAGE_ID] == message_id.encode() + b"\0"
        elif shape != "tlv-only":
            assert named == f"id:{message_id}"
    if shape == "text-id-differs":
        named = [b.short_message.decode().split()[0] for b in bodies]
        assert named == ["id:0", f"id:{ids[0]}"]
