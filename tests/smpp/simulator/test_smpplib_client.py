"""A third-party client (plain smpplib, not our session) against the simulator."""

from __future__ import annotations

import time

import pytest
import smpplib.client
import smpplib.consts
import smpplib.exceptions
import smpplib.gsm

from smpp.codec.status import by_name
from tests.harness.procs import wait_until

pytestmark = pytest.mark.interop
TEXT = "Third-party client text, long enough to be sent in two UDH parts by smpplib. " * 3


@pytest.fixture
def smpplib_client():
    """smpplib_client(sim) -> a connected smpplib Client; disconnected at teardown."""
    clients = []

    def connect(sim) -> smpplib.client.Client:
        client = smpplib.client.Client(sim.host, sim.port, timeout=5, allow_unknown_opt_params=True)
        client.connect()
        clients.append(client)
        return client

    try:
        yield connect
    finally:
        for client in clients:
            client.disconnect()


def _read_until(client, done, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "smpplib did not get the expected PDUs in time"
        client.read_once()


def test_smpplib_submits_concatenated_text_and_gets_receipts(make_simulator, smpplib_client):
    sim = make_simulator(system_id="acct", password="pw", message_id_format="hex")
    client = smpplib_client(sim)
    client.bind_transceiver(system_id="acct", password="pw")
    resp_ids, receipts = [], []
    client.set_message_sent_handler(lambda pdu: resp_ids.append(pdu.message_id))
    client.set_message_received_handler(lambda pdu: receipts.append(pdu))
    parts, coding, esm_class = smpplib.gsm.make_parts(TEXT)
    assert len(parts) == 2
    for part in parts:
        client.send_message(
            source_addr_ton=smpplib.consts.SMPP_TON_ALNUM,
            source_addr="ACME",
            dest_addr_ton=smpplib.consts.SMPP_TON_INTL,
            destination_addr="254700000001",
            short_message=part,
            data_coding=coding,
            esm_class=esm_class,
            registered_delivery=True,
        )
    _read_until(client, lambda: len(resp_ids) == 2 and len(receipts) == 2)
    [message] = sim.messages
    assert message.text == TEXT and message.concat == "udh"
    assert [i.decode() for i in resp_ids] == list(message.message_ids)
    assert [r.receipted_message_id.decode() for r in receipts] == list(message.message_ids)
    assert {r.message_state for r in receipts} == {smpplib.consts.SMPP_MESSAGE_STATE_DELIVERED}
    assert all(b"stat:DELIVRD" in r.short_message for r in receipts)
    wait_until(lambda: [r.response_status for r in sim.receipts] == [0, 0])
    client.unbind()
    wait_until(lambda: [b.unbound_by for b in sim.binds] == ["esme"])


def test_smpplib_sees_bind_refusals(make_simulator, smpplib_client):
    sim = make_simulator(system_id="acct", password="pw")
    with pytest.raises(smpplib.exceptions.PDUError) as info:
        smpplib_client(sim).bind_transmitter(system_id="acct", password="nope")
    assert info.value.args[1] == by_name("ESME_RINVPASWD").code


def test_smpplib_receives_mo_and_throttling(make_simulator, smpplib_client):
    sim = make_simulator(scenarios=["throttle:tps=0.01,burst=1"])
    client = smpplib_client(sim)
    client.bind_transceiver(system_id="any", password="x")
    statuses, received = [], []
    client.set_message_sent_handler(lambda pdu: statuses.append(pdu.status))
    client.set_error_pdu_handler(lambda pdu: None)  # the sent handler still sees it
    client.set_message_received_handler(lambda pdu: received.append(pdu.short_message))
    for _ in range(2):
        client.send_message(
            source_addr="ACME", destination_addr="254700000001", short_message=b"hi"
        )
    _read_until(client, lambda: len(statuses) == 2)
    assert statuses == [0, by_name("ESME_RTHROTTLED").code]
    sim.send_mo("254700000009", "12345", "reply from handset")
    _read_until(client, lambda: received)
    assert received == [b"reply from handset"]
    wait_until(lambda: sim.mo[0].acknowledged)
