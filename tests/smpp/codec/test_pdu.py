"""Byte-level tests of smpp.codec.pdu: every literal is commented field by field."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smpp.codec import pdu, status, tlv

ENQUIRE_LINK = bytes.fromhex(
    "00000010"  # command_length=16
    "00000015"  # command_id=enquire_link
    "00000000"  # command_status=0
    "00000007"  # sequence_number=7
)

SUBMIT_SM = bytes.fromhex(
    "00000036"  # command_length=54
    "00000004"  # command_id=submit_sm
    "00000000"  # command_status=0
    "0000002a"  # sequence_number=42
    "00"  # service_type=""
    "05"
    "00"  # source_addr_ton=5 (alphanumeric), source_addr_npi=0
    "41434d4500"  # source_addr="ACME"
    "01"
    "01"  # dest_addr_ton=1, dest_addr_npi=1
    "32353437303100"  # destination_addr="254701"
    "00"
    "00"
    "00"  # esm_class, protocol_id, priority_flag
    "00"
    "00"  # schedule_delivery_time="", validity_period=""
    "01"
    "00"
    "00"
    "00"  # registered_delivery=1, replace_if_present, data_coding=0, sm_default_msg_id
    "05"
    "68656c6c6f"  # sm_length=5, short_message="hello"
    "0204"
    "0002"
    "0102"  # TLV user_message_reference=0x0102
)


def test_header_round_trip():
    assert pdu.decode_header(ENQUIRE_LINK) == (16, pdu.ENQUIRE_LINK, 0, 7)
    assert pdu.encode_enquire_link(7) == ENQUIRE_LINK
    assert pdu.decode_pdu(ENQUIRE_LINK) == (pdu.ENQUIRE_LINK, 0, 7, None)


def test_submit_sm_encodes_to_the_literal_and_back():
    message = pdu.ShortMessage(
        source_addr_ton=5,
        source_addr="ACME",
        dest_addr_ton=1,
        dest_addr_npi=1,
        destination_addr="254701",
        registered_delivery=1,
        short_message=b"hello",
        tlvs={tlv.TAG_USER_MESSAGE_REFERENCE: b"\x01\x02"},
    )
    assert pdu.encode_submit_sm(42, message) == SUBMIT_SM
    decoded = pdu.decode_pdu(SUBMIT_SM)
    assert decoded.command_id == pdu.SUBMIT_SM and decoded.sequence_number == 42
    assert decoded.body == message


def test_submit_sm_resp_carries_the_id_and_drops_the_body_on_error():
    assert pdu.encode_submit_sm_resp(42, "ab12") == bytes.fromhex(
        "00000015"  # command_length=21
        "80000004"  # submit_sm_resp
        "00000000"  # ESME_ROK
        "0000002a"  # sequence_number=42
        "6162313200"  # message_id="ab12"
    )
    assert pdu.encode_submit_sm_resp(42, "ignored", status=0x58) == bytes.fromhex(
        "0000001080000004000000580000002a"
    )  # ESME_RTHROTTLED, no body
    assert pdu.decode_submit_sm_resp(b"ab12\0") == "ab12"
    assert pdu.decode_submit_sm_resp(b"") == ""


def test_bind_and_bind_resp():
    frame = pdu.encode_bind(pdu.BIND_TRANSCEIVER, 1, pdu.Bind("smppclient", "secret"))
    assert frame == bytes.fromhex(
        "00000027"  # command_length=39
        "00000009"  # bind_transceiver
        "00000000"
        "00000001"  # status 0, sequence 1
        "736d7070636c69656e7400"  # system_id="smppclient"
        "73656372657400"  # password="secret"
        "00"  # system_type=""
        "34"
        "00"
        "00"  # interface_version=0x34, addr_ton, addr_npi
        "00"  # address_range=""
    )
    assert pdu.decode_pdu(frame).body == pdu.Bind("smppclient", "secret")
    resp = pdu.encode_bind_resp(pdu.BIND_TRANSCEIVER, 1, "SIM")
    assert resp == bytes.fromhex(
        "00000019"
        "80000009"
        "00000000"
        "00000001"  # length 25, bind_transceiver_resp
        "53494d00"  # system_id="SIM"
        "0210"
        "0001"
        "34"  # TLV sc_interface_version=0x34
    )
    assert pdu.decode_bind_resp(resp[16:]) == ("SIM", {tlv.TAG_SC_INTERFACE_VERSION: b"\x34"})


def test_deliver_sm_resp_and_header_only_commands():
    assert pdu.encode_deliver_sm_resp(9) == bytes.fromhex(
        "0000001180000005000000000000000900"
    )  # message_id="" (unused)
    assert pdu.encode_generic_nack(3, status.ESME_RINVCMDID) == bytes.fromhex(
        "00000010800000000000000300000003"
    )
    assert pdu.encode_unbind(4)[4:8] == bytes.fromhex("00000006")
    assert pdu.encode_unbind_resp(4)[4:8] == bytes.fromhex("80000006")


def test_data_sm_round_trip():
    message = pdu.DataSm(
        source_addr="1",
        destination_addr="2",
        registered_delivery=1,
        tlvs={tlv.TAG_MESSAGE_PAYLOAD: b"payload"},
    )
    frame = pdu.encode_data_sm(5, message)
    assert frame[16:] == bytes.fromhex(
        "00"
        "0000"
        "3100"
        "0000"
        "3200"  # service_type, src ton/npi "1", dst ton/npi "2"
        "00"
        "01"
        "00"  # esm_class, registered_delivery=1, data_coding
        "0424"
        "0007"
        "7061796c6f6164"
    )  # message_payload="payload"
    assert pdu.decode_pdu(frame).body == message
    resp = pdu.encode_data_sm_resp(5, "77")
    assert pdu.decode_pdu(resp) == (pdu.DATA_SM_RESP, 0, 5, ("77", {}))


def test_split_frames_keeps_the_incomplete_rest():
    stream = ENQUIRE_LINK + SUBMIT_SM + SUBMIT_SM[:20]
    frames, rest = pdu.split_frames(stream)
    assert frames == [ENQUIRE_LINK, SUBMIT_SM]
    assert rest == SUBMIT_SM[:20]
    assert pdu.split_frames(b"\x00\x00") == ([], b"\x00\x00")


@pytest.mark.parametrize("length", [0, 15, pdu.MAX_PDU_LENGTH + 1])
def test_split_frames_rejects_impossible_lengths(length):
    frame = length.to_bytes(4, "big") + bytes.fromhex("000000040000000000000063")
    with pytest.raises(pdu.PduError) as info:
        pdu.split_frames(frame)
    assert info.value.status == status.ESME_RINVCMDLEN
    assert (info.value.command_id, info.value.sequence) == (pdu.SUBMIT_SM, 0x63)


@pytest.mark.parametrize("cut", range(17, len(SUBMIT_SM) - 6))
def test_truncated_submit_sm_is_a_pdu_error_never_an_index_error(cut):
    frame = cut.to_bytes(4, "big") + SUBMIT_SM[4:cut]
    with pytest.raises(pdu.PduError):
        pdu.decode_pdu(frame)


def test_decode_errors_carry_a_status_to_answer_with():
    too_long_source = SUBMIT_SM[:19] + b"A" * 30 + b"\0" + SUBMIT_SM[24:]
    with pytest.raises(pdu.PduError) as info:
        pdu.decode_short_message(too_long_source[16:])
    assert info.value.status == status.ESME_RINVSRCADR
    bad_tlv = SUBMIT_SM[16:-2]  # the TLV says 2 octets, only 0 remain
    with pytest.raises(pdu.PduError) as info:
        pdu.decode_short_message(bad_tlv)
    assert info.value.status == status.ESME_RINVOPTPARSTREAM
    with pytest.raises(pdu.PduError):
        pdu.decode_pdu(pdu.encode_pdu(pdu.ENQUIRE_LINK, 0, 1, b"x"))  # body on a header-only PDU


def test_encoders_refuse_what_the_fields_cannot_hold():
    with pytest.raises(pdu.PduError):
        pdu.encode_submit_sm(1, pdu.ShortMessage(destination_addr="1" * 21))  # max 20 + NUL
    with pytest.raises(pdu.PduError) as info:
        pdu.encode_submit_sm(1, pdu.ShortMessage(short_message=b"x" * 255))
    assert info.value.status == status.ESME_RINVMSGLEN
    with pytest.raises(pdu.PduError):
        pdu.encode_submit_sm(1, pdu.ShortMessage(esm_class=256))
    with pytest.raises(pdu.PduError):
        pdu.encode_bind(pdu.BIND_TRANSMITTER, 1, pdu.Bind("x", "ninechars"))  # password max 8


def test_unknown_commands_keep_their_raw_body_and_name():
    frame = pdu.encode_pdu(0x00000999, 0, 3, b"\x01\x02")
    assert pdu.decode_pdu(frame) == (0x999, 0, 3, b"\x01\x02")
    assert pdu.command_name(0x999) == "0x00000999"
    assert pdu.command_name(pdu.DELIVER_SM_RESP) == "deliver_sm_resp"
    # status and TLV numbers pdu imports are not command names: 0x0A is ESME_RINVSRCADR,
    # 0x0210 the sc_interface_version tag, and neither is a command id.
    assert pdu.command_name(0x0000000A) == "0x0000000a"
    assert pdu.command_name(0x00000210) == "0x00000210"


def test_tlv_helpers():
    raw = pdu.encode_tlvs(
        {tlv.TAG_RECEIPTED_MESSAGE_ID: pdu.tlv_cstring("A1"), tlv.TAG_MESSAGE_STATE: pdu.tlv_int(2)}
    )
    assert raw == bytes.fromhex("001e00034131000427000102")
    tlvs = pdu.decode_tlvs(raw)
    assert pdu.tlv_to_str(tlvs[tlv.TAG_RECEIPTED_MESSAGE_ID]) == "A1"
    assert pdu.tlv_to_int(tlvs[tlv.TAG_MESSAGE_STATE]) == 2


# --- properties: round trips, and nothing but PduError out of garbage ---
_octet = st.integers(0, 255)
_ascii = st.text(st.characters(min_codepoint=1, max_codepoint=255), max_size=20)


@settings(max_examples=200, deadline=None)
@given(
    source=_ascii,
    dest=_ascii,
    esm=_octet,
    coding=_octet,
    text=st.binary(max_size=254),
    tlvs=st.dictionaries(st.integers(0, 0xFFFF), st.binary(max_size=40), max_size=3),
)
def test_short_message_round_trip(source, dest, esm, coding, text, tlvs):
    message = pdu.ShortMessage(
        source_addr=source,
        destination_addr=dest,
        esm_class=esm,
        data_coding=coding,
        short_message=text,
        tlvs=tlvs,
    )
    assert pdu.decode_pdu(pdu.encode_deliver_sm(1, message)).body == message


@settings(max_examples=300, deadline=None)
@given(command_id=st.sampled_from(sorted(pdu.COMMAND_NAMES)), body=st.binary(max_size=80))
def test_garbage_bodies_raise_only_pdu_error(command_id, body):
    try:
        pdu.decode_pdu(pdu.encode_pdu(command_id, 0, 1, body))
    except pdu.PduError:
        pass


@settings(max_examples=300, deadline=None)
@given(stream=st.binary(max_size=200))
def test_garbage_streams_raise_only_pdu_error(stream):
    try:
        frames, rest = pdu.split_frames(stream)
    except pdu.PduError:
        return
    assert b"".join(frames) + rest == stream
