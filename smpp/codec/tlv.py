"""The one table of SMPP 3.4 TLV (optional parameter) tags the project reads or writes
(section 5.3.2), and the values of the message_state TLV.

Every module takes its tag numbers from here; none is typed anywhere else. The encoding and
decoding of TLVs themselves (``decode_tlvs``, ``encode_tlvs``, ``tlv_int``...) live in
:mod:`smpp.codec.pdu`, next to the PDUs that carry them.
"""

from __future__ import annotations

from typing import Final

# --- addressing (section 5.3.2.1-5.3.2.10) ---
TAG_DEST_ADDR_SUBUNIT: Final = 0x0005  # 1 octet: 1 MS display, 2 mobile equipment, 3 SIM...
TAG_PAYLOAD_TYPE: Final = 0x0019  # 1 octet: 0 default (WDP), 1 WCMP
TAG_RECEIPTED_MESSAGE_ID: Final = 0x001E  # C-octet string, up to 65 octets: a receipt's id
TAG_USER_MESSAGE_REFERENCE: Final = 0x0204  # 2 octets: the ESME's own reference
TAG_SOURCE_PORT: Final = 0x020A  # 2 octets: application port at the source
TAG_DESTINATION_PORT: Final = 0x020B  # 2 octets: application port at the destination

# --- SAR concatenation (section 5.3.2.22-5.3.2.24) ---
TAG_SAR_MSG_REF_NUM: Final = 0x020C  # 2 octets: reference shared by every part
TAG_SAR_TOTAL_SEGMENTS: Final = 0x020E  # 1 octet: how many parts, 1..255
TAG_SAR_SEGMENT_SEQNUM: Final = 0x020F  # 1 octet: this part's number, 1..total

# --- bind and receipts (section 5.3.2.25-5.3.2.35) ---
TAG_SC_INTERFACE_VERSION: Final = 0x0210  # 1 octet in bind_*_resp: the SMSC's SMPP version
TAG_NETWORK_ERROR_CODE: Final = 0x0423  # 3 octets: network type (1), error code (2)
TAG_MESSAGE_PAYLOAD: Final = 0x0424  # up to 64K octets; short_message must then be empty
TAG_MORE_MESSAGES_TO_SEND: Final = 0x0426  # 1 octet: 1 more messages follow
TAG_MESSAGE_STATE: Final = 0x0427  # 1 octet, one of MESSAGE_STATES

#: message_state TLV values (section 5.2.28), by the ``stat:`` word a receipt's text uses.
MESSAGE_STATES: Final = {
    "ENROUTE": 1,
    "DELIVRD": 2,
    "EXPIRED": 3,
    "DELETED": 4,
    "UNDELIV": 5,
    "ACCEPTD": 6,
    "UNKNOWN": 7,
    "REJECTD": 8,
}
