"""submit_sm -> submit_sm_resp -> delivery receipt: id forms, text, TLVs, outcomes, routing."""

from __future__ import annotations

import re
import time

import pytest

from smpp.codec import pdu, tlv
from smpp.codec.receipt import parse_receipt
from tests.harness.procs import wait_until

RECEIPT_RE = re.compile(
    r"id:(\S+) sub:001 dlvrd:(00[01]) submit date:(\d{10}) "
    r"done date:(\d{10}) stat:(\w{7}) err:(\d{3}) text:(.*)"
)


def _receipt(client) -> tuple[pdu.Pdu, re.Match]:
    deliver, _ = client.read_until(pdu.DELIVER_SM)
    client.send(pdu.encode_deliver_sm_resp(deliver.sequence_number))
    match = RECEIPT_RE.fullmatch(deliver.body.short_message.decode("ascii"))
    assert match, deliver.body.short_message
    return deliver, match


def test_receipt_follows_the_resp_with_standard_text_and_tlvs(make_simulator, esme):
    sim = make_simulator(clock=lambda: 1_780_000_000.0)  # 2026-05-28 20:26:40 UTC
    client = esme(sim)
    client.bind()
    resp = client.submit(
        dest="254711000111",
        text=b"Hello there, this is longer than 20",
        source_addr="ACME",
        registered_delivery=1,
    )
    message_id = resp.body[0]
    assert resp.command_status == 0 and message_id.isdigit()
    deliver, match = _receipt(client)
    assert isinstance(deliver.body, pdu.ShortMessage)
    body = deliver.body
    assert body.esm_class == pdu.ESM_CLASS_DELIVERY_RECEIPT
    assert (body.source_addr, body.destination_addr) == ("254711000111", "ACME")
    assert match.groups() == (
        message_id,
        "001",
        "2605282026",
        "2605282026",
        "DELIVRD",
        "000",
        "Hello there, this is",
    )
    assert pdu.tlv_to_str(body.tlvs[tlv.TAG_RECEIPTED_MESSAGE_ID]) == message_id
    assert pdu.tlv_to_int(body.tlvs[tlv.TAG_MESSAGE_STATE]) == 2  # DELIVERED
    parsed = parse_receipt(body.short_message, body.tlvs)  # the bridge's own parser agrees
    assert parsed is not None
    assert parsed.message_id == message_id
    [record] = wait_until(lambda: [r for r in sim.receipts if r.response_status == 0])
    assert (record.message_id, record.stat, record.sequence) == (
        message_id,
        "DELIVRD",
        deliver.sequence_number,
    )


@pytest.mark.parametrize(
    "id_format,receipt_format,check",
    [
        ("decimal", "same", lambda resp, rid: resp == rid and resp.isdigit()),
        ("hex", "same", lambda resp, rid: resp == rid and int(resp, 16) > 0),
        (
            "uuid",
            "same",
            lambda resp, rid: (
                resp == rid
                and re.fullmatch(
                    r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", resp
                )
            ),
        ),
        ("decimal", "hex", lambda resp, rid: rid == f"{int(resp):X}" and rid != resp),
        ("hex", "decimal", lambda resp, rid: rid == str(int(resp, 16)) and rid != resp),
    ],
)
def test_message_id_forms_and_the_receipt_id_switch(
    make_simulator, esme, id_format, receipt_format, check
):
    sim = make_simulator(message_id_format=id_format, receipt_id_format=receipt_format)
    client = esme(sim)
    client.bind()
    resp_id = client.submit(registered_delivery=1).body[0]
    deliver, match = _receipt(client)
    assert isinstance(deliver.body, pdu.ShortMessage)
    receipt_id = match.group(1)
    assert check(resp_id, receipt_id)
    assert pdu.tlv_to_str(deliver.body.tlvs[tlv.TAG_RECEIPTED_MESSAGE_ID]) == receipt_id


@pytest.mark.parametrize("stat,state", [("UNDELIV", 5), ("EXPIRED", 3), ("REJECTD", 8)])
def test_configured_outcome_shows_in_text_and_message_state(make_simulator, esme, stat, state):
    sim = make_simulator(outcomes={stat: 1.0})
    client = esme(sim)
    client.bind()
    client.submit(registered_delivery=1)
    deliver, match = _receipt(client)
    assert isinstance(deliver.body, pdu.ShortMessage)
    assert match.group(5) == stat and match.group(2) == "000"
    assert pdu.tlv_to_int(deliver.body.tlvs[tlv.TAG_MESSAGE_STATE]) == state
    assert sim.messages[0].outcome == stat


def test_outcome_mix_is_seeded_and_follows_the_weights(make_simulator, esme):
    def run() -> list[str]:
        sim = make_simulator(outcomes={"DELIVRD": 0.5, "UNDELIV": 0.5}, seed=7)
        client = esme(sim)
        client.bind("transmitter")
        for _ in range(40):
            client.send(client.submit_frame())
        client.enquire()
        return [m.outcome for m in sim.messages]

    first, second = run(), run()
    assert first == second
    assert set(first) == {"DELIVRD", "UNDELIV"}


def test_registered_delivery_decides_whether_a_receipt_is_sent(make_simulator, esme):
    sim = make_simulator(outcomes={"DELIVRD": 1.0})
    client = esme(sim)
    client.bind()
    client.submit(registered_delivery=0)
    client.submit(registered_delivery=2)  # failures only, and this one is delivered
    sim.reconfigure(outcomes={"UNDELIV": 1.0})
    client.submit(registered_delivery=2)
    _, match = _receipt(client)
    assert match.group(5) == "UNDELIV"
    client.enquire()
    assert len(sim.receipts) == 1


def test_receipt_waits_for_the_dlr_delay(make_simulator, esme):
    sim = make_simulator(dlr_delay=0.3)
    client = esme(sim)
    client.bind()
    started = time.monotonic()
    client.submit(registered_delivery=1)
    _receipt(client)
    assert time.monotonic() - started >= 0.3


def test_receipt_goes_to_a_receiver_of_the_same_system_id(simulator, esme):
    transmitter = esme(simulator)
    transmitter.bind("transmitter", system_id="acct")
    other = esme(simulator)
    other.bind("receiver", system_id="someone-else")
    message_id = transmitter.submit(registered_delivery=1).body[0]
    wait_until(lambda: simulator.pending_receipts == 1)  # nowhere to go yet: held
    receiver = esme(simulator)
    receiver.bind("receiver", system_id="acct")
    _, match = _receipt(receiver)
    assert match.group(1) == message_id
    assert simulator.pending_receipts == 0
    other.enquire()
    assert [p["command"] for p in simulator.pdus(system_id="someone-else")] == [
        "bind_receiver",
        "enquire_link",
    ]


def test_unanswered_receipts_are_recorded(simulator, esme):
    client = esme(simulator)
    client.bind()
    client.submit(registered_delivery=1)
    client.submit(registered_delivery=1)
    first, _ = client.read_until(pdu.DELIVER_SM)
    client.read_until(pdu.DELIVER_SM)
    client.send(pdu.encode_deliver_sm_resp(first.sequence_number, status=0x64))
    client.enquire()
    receipts = simulator.receipts
    assert [r.response_status for r in receipts] == [0x64, None]
    assert simulator.unanswered_receipts == receipts[1:]


def test_a_refused_receipt_comes_again_after_the_retry_delay(make_simulator, esme):
    """receipt_retry_seconds: an ESME_RX_T_APPN answer is not the end of a receipt, as at a
    real SMSC; it comes again (same text, a new sequence) until it is answered ESME_ROK."""
    sim = make_simulator(receipt_retry_seconds=0.2)
    client = esme(sim)
    client.bind()
    client.submit(registered_delivery=1)
    first, _ = client.read_until(pdu.DELIVER_SM)
    client.send(pdu.encode_deliver_sm_resp(first.sequence_number, status=0x64))
    again, _ = client.read_until(pdu.DELIVER_SM)  # bounded by the client's own read timeout
    assert again.sequence_number != first.sequence_number
    assert again.body.short_message == first.body.short_message
    client.send(pdu.encode_deliver_sm_resp(again.sequence_number))
    client.enquire()
    (record,) = sim.receipts
    assert record.statuses == [0x64, 0] and record.sends == 2
    assert sim.counters["receipts_retried"] == 1


def test_without_a_retry_delay_a_refused_receipt_waits_for_resend_receipts(simulator, esme):
    client = esme(simulator)
    client.bind()
    client.submit(registered_delivery=1)
    first, _ = client.read_until(pdu.DELIVER_SM)
    client.send(pdu.encode_deliver_sm_resp(first.sequence_number, status=0x64))
    client.enquire()
    assert simulator.counters.get("receipts_retried", 0) == 0
    assert simulator.resend_receipts() == 1


def test_receipt_text_sample_is_printable_ascii_of_the_decoded_text():
    from smpp.simulator.dlr import text_sample

    assert text_sample(b"plain text that is longer", 0) == "plain text that is l"
    assert text_sample(b"a\x00b\x11c\x5f", 0) == "a@b_c."  # GSM @, _, then section sign
    assert text_sample("Привет".encode("utf-16-be"), 8) == "......"


def test_reconfigure_keeps_ids_unique_and_can_change_their_form(make_simulator, esme):
    sim = make_simulator(seed=3)
    client = esme(sim)
    client.bind("transmitter")
    first = client.submit().body[0]
    sim.reconfigure(outcomes={"EXPIRED": 1}, seed=3)
    second = client.submit().body[0]
    sim.reconfigure(message_id_format="hex")
    third = client.submit().body[0]
    assert int(second) == int(first) + 1 and int(third, 16) == int(first) + 2
    assert [m.outcome for m in sim.messages] == ["DELIVRD", "EXPIRED", "EXPIRED"]


def test_sequential_ids_count_from_one_and_receipts_name_them(make_simulator, esme):
    sim = make_simulator(message_id_format="sequential")
    client = esme(sim)
    client.bind()
    ids = [client.submit(registered_delivery=1).body[0] for _ in range(3)]
    assert ids == ["1", "2", "3"]
    got = sorted(_receipt(client)[1].group(1) for _ in range(3))
    assert got == ["1", "2", "3"]


def test_sequential_ids_with_hex_receipts(make_simulator, esme):
    sim = make_simulator(message_id_format="sequential", receipt_id_format="hex")
    client = esme(sim)
    client.bind()
    ids = [client.submit(registered_delivery=1).body[0] for _ in range(12)]
    assert ids[-1] == "12"
    assert sorted(r.receipt_id for r in _wait_receipts(sim, 12)) == sorted(
        f"{n:X}" for n in range(1, 13)
    )


def _wait_receipts(sim, n: int, timeout: float = 10.0):
    wait_until(lambda: len(sim.receipts) >= n, timeout=timeout, message=f"{n} receipts")
    return sim.receipts


def test_receipt_delays_spread_between_dlr_delay_and_dlr_delay_max(make_simulator, esme):
    """Receipts come back out of submission order, each within [dlr_delay, dlr_delay_max]."""
    sim = make_simulator(message_id_format="sequential", dlr_delay=0.05, dlr_delay_max=1.0, seed=11)
    client = esme(sim)
    client.bind()
    sent = {}
    for _ in range(40):
        sent[client.submit(registered_delivery=1).body[0]] = time.monotonic()
    order, came = [], {}
    for _ in range(40):
        rid = _receipt(client)[1].group(1)
        order.append(rid)
        came[rid] = time.monotonic()
    assert sorted(order, key=int) == list(sent)
    assert order != list(sent)  # spread: not in submission order
    assert all(came[i] - sent[i] >= 0.05 for i in sent)
    assert max(came[i] - sent[i] for i in sent) < 1.0 + 2.0  # generous for a loaded machine


def test_receipt_delay_spread_is_seeded():
    import random

    from smpp.simulator.dlr import ReceiptDelays

    def draws(seed: int) -> list[float]:
        delays = ReceiptDelays(0.5, 3.0, random.Random(seed))
        return [delays.next() for _ in range(50)]

    assert draws(3) == draws(3) != draws(4)
    assert all(0.5 <= d <= 3.0 for d in draws(3))
    assert ReceiptDelays(0.5, None, random.Random(3)).next() == 0.5


def test_dlr_delay_max_below_dlr_delay_is_refused():
    from smpp.simulator import SimulatorConfig, SimulatorConfigError

    with pytest.raises(SimulatorConfigError, match="dlr_delay_max .* must be >= dlr_delay"):
        SimulatorConfig(dlr_delay=2.0, dlr_delay_max=1.0)
