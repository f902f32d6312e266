"""Bind states, credentials, the bind cap, enquire_link, unbind both ways, generic_nack."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smpp.codec import pdu
from smpp.codec.status import by_name
from tests.harness.procs import wait_until

ROK = 0
RALYBND = by_name("ESME_RALYBND").code
RBINDFAIL = by_name("ESME_RBINDFAIL").code
RINVBNDSTS = by_name("ESME_RINVBNDSTS").code
RINVPASWD = by_name("ESME_RINVPASWD").code
RINVSYSID = by_name("ESME_RINVSYSID").code
RINVCMDID = by_name("ESME_RINVCMDID").code
RINVCMDLEN = by_name("ESME_RINVCMDLEN").code


@pytest.mark.parametrize(
    "kind,resp_id",
    [
        ("transmitter", pdu.BIND_TRANSMITTER_RESP),
        ("receiver", pdu.BIND_RECEIVER_RESP),
        ("transceiver", pdu.BIND_TRANSCEIVER_RESP),
    ],
)
def test_each_bind_type_is_answered_and_recorded(simulator, esme, kind, resp_id):
    resp = esme(simulator).bind(kind, "anyone", "anything")
    assert (resp.command_id, resp.command_status) == (resp_id, ROK)
    assert resp.body[0] == "SIMSMSC"
    [record] = simulator.binds
    assert (record.system_id, record.password, record.bind_type) == ("anyone", "anything", kind)
    assert record.bound and record.bind_status == ROK
    assert record.pdus[0]["command"] == f"bind_{kind}" and record.pdus[0]["answer"] == ROK


def test_credentials_are_checked_when_configured(make_simulator, esme):
    sim = make_simulator(system_id="bridge", password="secret")
    assert esme(sim).bind("transmitter", "other", "secret").command_status == RINVSYSID
    assert esme(sim).bind("transmitter", "bridge", "wrong").command_status == RINVPASWD
    assert esme(sim).bind("transmitter", "bridge", "secret").command_status == ROK
    assert [b.bind_status for b in sim.binds] == [RINVSYSID, RINVPASWD, ROK]
    assert [b.bound for b in sim.binds] == [False, False, True]


def test_second_bind_on_one_connection_is_already_bound(simulator, esme):
    client = esme(simulator)
    assert client.bind("transmitter").command_status == ROK
    assert client.bind("receiver").command_status == RALYBND
    [record] = simulator.binds
    assert record.bind_type == "transmitter" and record.bound


def test_bind_cap_per_system_id_frees_a_slot_on_unbind(make_simulator, esme):
    sim = make_simulator(max_binds_per_system_id=2)
    first, second, third = esme(sim), esme(sim), esme(sim)
    assert first.bind(system_id="acct").command_status == ROK
    assert second.bind("receiver", system_id="acct").command_status == ROK
    assert third.bind(system_id="acct").command_status == RBINDFAIL
    assert esme(sim).bind(system_id="other").command_status == ROK  # the cap is per system_id
    assert first.request(pdu.encode_unbind(first.next_seq())).command_id == pdu.UNBIND_RESP
    assert first.closed_by_peer()
    wait_until(lambda: sum(b.bound and b.system_id == "acct" for b in sim.binds) == 1)
    assert third.bind(system_id="acct").command_status == ROK


def test_only_bound_transmitting_sessions_may_submit(simulator, esme):
    unbound = esme(simulator)
    assert unbound.submit().command_status == RINVBNDSTS
    receiver = esme(simulator)
    receiver.bind("receiver")
    resp = receiver.submit()
    assert (resp.command_id, resp.command_status) == (pdu.SUBMIT_SM_RESP, RINVBNDSTS)
    data_sm = pdu.encode_data_sm(receiver.next_seq(), pdu.DataSm(destination_addr="1"))
    assert receiver.request(data_sm).command_status == RINVBNDSTS
    assert simulator.messages == []


def test_enquire_link_is_answered_bound_or_not(simulator, esme):
    client = esme(simulator)
    assert client.enquire().command_id == pdu.ENQUIRE_LINK_RESP
    client.bind()
    resp = client.enquire()
    assert (resp.command_id, resp.command_status) == (pdu.ENQUIRE_LINK_RESP, ROK)
    assert [p["command"] for p in simulator.pdus()] == [
        "enquire_link",
        "bind_transceiver",
        "enquire_link",
    ]


def test_unbind_from_the_esme_closes_the_session(simulator, esme):
    client = esme(simulator)
    assert client.request(pdu.encode_unbind(client.next_seq())).command_status == RINVBNDSTS
    client.bind()
    resp = client.request(pdu.encode_unbind(client.next_seq()))
    assert (resp.command_id, resp.command_status) == (pdu.UNBIND_RESP, ROK)
    assert client.closed_by_peer()
    [record] = wait_until(lambda: [b for b in simulator.binds if not b.open])
    assert record.unbound_by == "esme" and not record.bound


def test_unbind_from_the_smsc_waits_for_the_unbind_resp(simulator, esme):
    client = esme(simulator)
    client.bind()
    esme(simulator).bind("receiver")  # also unbound
    assert simulator.unbind() == 2
    unbind = client.read()
    assert unbind.command_id == pdu.UNBIND
    assert client.submit().command_status == RINVBNDSTS  # unbinding: no more submits
    client.send(pdu.encode_unbind_resp(unbind.sequence_number))
    assert client.closed_by_peer()
    record = wait_until(lambda: [b for b in simulator.binds if not b.open])[0]
    assert record.unbound_by == "smsc"
    assert record.pdus[-1]["command"] == "unbind_resp"


def test_unknown_command_gets_generic_nack(simulator, esme):
    client = esme(simulator)
    client.bind()
    resp = client.request(pdu.encode_pdu(0x00000999, 0, 77, b"junk"))
    assert (resp.command_id, resp.command_status, resp.sequence_number) == (
        pdu.GENERIC_NACK,
        RINVCMDID,
        77,
    )
    query = client.request(pdu.encode_pdu(pdu.QUERY_SM, 0, 78, b"1\0\0\0\0"))  # unsupported
    assert (query.command_id, query.command_status) == (pdu.GENERIC_NACK, RINVCMDID)
    assert client.enquire().command_status == ROK  # the session carries on
    assert simulator.pdus(command="0x00000999")[0]["answer"] == RINVCMDID


@pytest.mark.parametrize("length", [8, 70_000])
def test_impossible_command_length_gets_generic_nack_and_a_close(simulator, esme, length):
    client = esme(simulator)
    client.bind()
    client.send(pdu.HEADER.pack(length, pdu.SUBMIT_SM, 0, 5))
    nack = client.read()
    assert (nack.command_id, nack.command_status, nack.sequence_number) == (
        pdu.GENERIC_NACK,
        RINVCMDLEN,
        5,
    )
    assert client.closed_by_peer()


def test_truncated_submit_is_refused_with_its_own_response(simulator, esme):
    client = esme(simulator)
    client.bind()
    resp = client.request(pdu.encode_pdu(pdu.SUBMIT_SM, 0, 9, b"\0\1\1"))
    assert (resp.command_id, resp.command_status) == (pdu.SUBMIT_SM_RESP, RINVCMDLEN)
    assert client.enquire().command_status == ROK


def test_stop_closes_connections_and_keeps_records(make_simulator, esme):
    sim = make_simulator()
    client = esme(sim)
    client.bind()
    client.submit(text=b"before stop")
    sim.stop()
    assert client.closed_by_peer()
    assert [m.text for m in sim.messages] == ["before stop"]
    sim.stop()  # idempotent


def test_start_on_a_busy_port_says_so(make_simulator):
    from smpp.simulator import Simulator, SimulatorError

    busy = make_simulator()
    with pytest.raises(SimulatorError, match="could not listen"):
        Simulator(port=busy.port).start()


# --- robustness: garbage never takes the simulator down or leaks an exception ---
_frames = st.one_of(
    st.binary(min_size=1, max_size=60),
    st.builds(
        lambda cid, body: pdu.encode_pdu(cid, 0, 1, body),
        st.sampled_from(sorted(pdu.COMMAND_NAMES) + [0x999]),
        st.binary(max_size=60),
    ),
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(garbage=st.lists(_frames, min_size=1, max_size=4))
def test_garbage_after_a_bind_never_breaks_the_simulator(simulator, garbage):
    from tests.harness.simulator import RawEsme

    with RawEsme(simulator.address, timeout=2) as client:
        client.bind()
        try:
            for chunk in garbage:
                client.send(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the simulator closed the connection after a framing error: allowed
    with RawEsme(simulator.address, timeout=5) as fresh:
        assert fresh.bind().command_status == ROK
        assert fresh.submit().command_status == ROK
    assert simulator.errors == []
