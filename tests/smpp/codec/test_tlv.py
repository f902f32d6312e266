"""The TLV table: every tag at its SMPP 3.4 number (section 5.3.2), and the message_state values
(section 5.2.28). Known answers typed here on purpose, independent of the table under test."""

from __future__ import annotations

from smpp.codec import receipt, tlv


def test_tags_have_their_spec_numbers():
    tags = {name: value for name, value in vars(tlv).items() if name.startswith("TAG_")}
    assert tags == {
        "TAG_DEST_ADDR_SUBUNIT": 0x0005,
        "TAG_PAYLOAD_TYPE": 0x0019,
        "TAG_RECEIPTED_MESSAGE_ID": 0x001E,
        "TAG_USER_MESSAGE_REFERENCE": 0x0204,
        "TAG_SOURCE_PORT": 0x020A,
        "TAG_DESTINATION_PORT": 0x020B,
        "TAG_SAR_MSG_REF_NUM": 0x020C,
        "TAG_SAR_TOTAL_SEGMENTS": 0x020E,
        "TAG_SAR_SEGMENT_SEQNUM": 0x020F,
        "TAG_SC_INTERFACE_VERSION": 0x0210,
        "TAG_NETWORK_ERROR_CODE": 0x0423,
        "TAG_MESSAGE_PAYLOAD": 0x0424,
        "TAG_MORE_MESSAGES_TO_SEND": 0x0426,
        "TAG_MESSAGE_STATE": 0x0427,
    }


def test_message_states_and_their_inverse_in_receipt():
    assert tlv.MESSAGE_STATES == {
        "ENROUTE": 1,
        "DELIVRD": 2,
        "EXPIRED": 3,
        "DELETED": 4,
        "UNDELIV": 5,
        "ACCEPTD": 6,
        "UNKNOWN": 7,
        "REJECTD": 8,
    }
    assert receipt.MESSAGE_STATES == {v: k for k, v in tlv.MESSAGE_STATES.items()}
