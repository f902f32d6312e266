"""The one SMPP command_status table: name, meaning, and whether a retry can help.

"Retryable" means: the SMSC refused this PDU for a reason that is not the message's fault and
may pass later (congestion, throttling, an SMSC-side fault), so the same submit_sm may be sent
again after a back-off, and doing so cannot duplicate the message (a refused PDU was not
accepted). Everything else is permanent: resending the same PDU gets the same answer.
The retry budget (how often, how long) belongs to the delivery engine, not to this table.

Codes 0x000-0x0FF are SMPP 3.4 (section 5.1.3, names as in the spec and smpplib); 0x100-0x106
are the SMPP 5.0 additions an SMPP 3.4 SMSC may still send. 0x400-0x4FF are vendor-specific.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class Status:
    """One command_status value: its code, spec name, description and retry class."""

    code: int
    name: str
    description: str
    retryable: bool

    def __str__(self) -> str:
        return f"{self.name} (0x{self.code:08X}): {self.description}"


# --- every command_status value, by its spec name: the one place a status number is typed.
# Other modules use these (status.ESME_RTHROTTLED), never the number.
ESME_ROK: Final = 0x00
ESME_RINVMSGLEN: Final = 0x01
ESME_RINVCMDLEN: Final = 0x02
ESME_RINVCMDID: Final = 0x03
ESME_RINVBNDSTS: Final = 0x04
ESME_RALYBND: Final = 0x05
ESME_RINVPRTFLG: Final = 0x06
ESME_RINVREGDLVFLG: Final = 0x07
ESME_RSYSERR: Final = 0x08
ESME_RINVSRCADR: Final = 0x0A
ESME_RINVDSTADR: Final = 0x0B
ESME_RINVMSGID: Final = 0x0C
ESME_RBINDFAIL: Final = 0x0D
ESME_RINVPASWD: Final = 0x0E
ESME_RINVSYSID: Final = 0x0F
ESME_RCANCELFAIL: Final = 0x11
ESME_RREPLACEFAIL: Final = 0x13
ESME_RMSGQFUL: Final = 0x14
ESME_RINVSERTYP: Final = 0x15
ESME_RINVNUMDESTS: Final = 0x33
ESME_RINVDLNAME: Final = 0x34
ESME_RINVDESTFLAG: Final = 0x40
ESME_RINVSUBREP: Final = 0x42
ESME_RINVESMCLASS: Final = 0x43
ESME_RCNTSUBDL: Final = 0x44
ESME_RSUBMITFAIL: Final = 0x45
ESME_RINVSRCTON: Final = 0x48
ESME_RINVSRCNPI: Final = 0x49
ESME_RINVDSTTON: Final = 0x50
ESME_RINVDSTNPI: Final = 0x51
ESME_RINVSYSTYP: Final = 0x53
ESME_RINVREPFLAG: Final = 0x54
ESME_RINVNUMMSGS: Final = 0x55
ESME_RTHROTTLED: Final = 0x58
ESME_RINVSCHED: Final = 0x61
ESME_RINVEXPIRY: Final = 0x62
ESME_RINVDFTMSGID: Final = 0x63
ESME_RX_T_APPN: Final = 0x64
ESME_RX_P_APPN: Final = 0x65
ESME_RX_R_APPN: Final = 0x66
ESME_RQUERYFAIL: Final = 0x67
ESME_RINVOPTPARSTREAM: Final = 0xC0
ESME_ROPTPARNOTALLWD: Final = 0xC1
ESME_RINVPARLEN: Final = 0xC2
ESME_RMISSINGOPTPARAM: Final = 0xC3
ESME_RINVOPTPARAMVAL: Final = 0xC4
ESME_RDELIVERYFAILURE: Final = 0xFE
ESME_RUNKNOWNERR: Final = 0xFF
# SMPP 5.0 additions.
ESME_RSERTYPUNAUTH: Final = 0x100
ESME_RPROHIBITED: Final = 0x101
ESME_RSERTYPUNAVAIL: Final = 0x102
ESME_RSERTYPDENIED: Final = 0x103
ESME_RINVDCS: Final = 0x104
ESME_RINVSRCADDRSUBUNIT: Final = 0x105
ESME_RINVDSTADDRSUBUNIT: Final = 0x106

# (code, description, retryable); the name is the constant's. Retryable ones say why (see the
# module docstring).
_TABLE = (
    (ESME_ROK, "No Error", False),
    (ESME_RINVMSGLEN, "Message Length is invalid", False),
    (ESME_RINVCMDLEN, "Command Length is invalid", False),
    (ESME_RINVCMDID, "Invalid Command ID", False),
    # Sent on a bind that cannot submit right now (e.g. mid-reconnect, or a receiver bind):
    # the bind's fault, not the message's; resend it once a transmitter bind is up.
    (ESME_RINVBNDSTS, "Incorrect BIND Status for given command", True),
    (ESME_RALYBND, "ESME Already in Bound State", False),
    (ESME_RINVPRTFLG, "Invalid Priority Flag", False),
    (ESME_RINVREGDLVFLG, "Invalid Registered Delivery Flag", False),
    # An SMSC-side fault (database, routing or HLR timeout); usually passes.
    (ESME_RSYSERR, "System Error", True),
    (ESME_RINVSRCADR, "Invalid Source Address", False),
    (ESME_RINVDSTADR, "Invalid Destination Address", False),
    (ESME_RINVMSGID, "Message ID is invalid", False),
    (ESME_RBINDFAIL, "Bind Failed", False),
    (ESME_RINVPASWD, "Invalid Password", False),
    (ESME_RINVSYSID, "Invalid System ID", False),
    (ESME_RCANCELFAIL, "Cancel SM Failed", False),
    (ESME_RREPLACEFAIL, "Replace SM Failed", False),
    # The SMSC's queue (for this ESME or destination) is full: congestion, passes with time.
    (ESME_RMSGQFUL, "Message Queue Full", True),
    (ESME_RINVSERTYP, "Invalid Service Type", False),
    (ESME_RINVNUMDESTS, "Invalid number of destinations", False),
    (ESME_RINVDLNAME, "Invalid Distribution List name", False),
    (ESME_RINVDESTFLAG, "Destination flag is invalid (submit_multi)", False),
    (
        ESME_RINVSUBREP,
        "Invalid 'submit with replace' request (replace_if_present_flag set)",
        False,
    ),
    (ESME_RINVESMCLASS, "Invalid esm_class field data", False),
    (ESME_RCNTSUBDL, "Cannot Submit to Distribution List", False),
    (ESME_RSUBMITFAIL, "submit_sm or submit_multi failed", False),
    (ESME_RINVSRCTON, "Invalid Source address TON", False),
    (ESME_RINVSRCNPI, "Invalid Source address NPI", False),
    (ESME_RINVDSTTON, "Invalid Destination address TON", False),
    (ESME_RINVDSTNPI, "Invalid Destination address NPI", False),
    (ESME_RINVSYSTYP, "Invalid system_type field", False),
    (ESME_RINVREPFLAG, "Invalid replace_if_present flag", False),
    (ESME_RINVNUMMSGS, "Invalid number of messages", False),
    # We exceeded the SMSC's allowed rate: slow down and resend.
    (ESME_RTHROTTLED, "Throttling error (ESME has exceeded allowed message limits)", True),
    (ESME_RINVSCHED, "Invalid Scheduled Delivery Time", False),
    (ESME_RINVEXPIRY, "Invalid message validity period (Expiry time)", False),
    (ESME_RINVDFTMSGID, "Predefined Message Invalid or Not Found", False),
    # "Temporary" by definition.
    (ESME_RX_T_APPN, "ESME Receiver Temporary App Error Code", True),
    (ESME_RX_P_APPN, "ESME Receiver Permanent App Error Code", False),
    (ESME_RX_R_APPN, "ESME Receiver Reject Message Error Code", False),
    (ESME_RQUERYFAIL, "query_sm request failed", False),
    (ESME_RINVOPTPARSTREAM, "Error in the optional part of the PDU Body", False),
    (ESME_ROPTPARNOTALLWD, "Optional Parameter not allowed", False),
    (ESME_RINVPARLEN, "Invalid Parameter Length", False),
    (ESME_RMISSINGOPTPARAM, "Expected Optional Parameter missing", False),
    (ESME_RINVOPTPARAMVAL, "Invalid Optional Parameter Value", False),
    # Transaction-mode delivery (data_sm_resp) failed at the network; whether that is temporary
    # is in the delivery_failure_reason TLV, which this table cannot see. We never use
    # transaction mode, so treat it as the SMSC's final word rather than guess "retry".
    (ESME_RDELIVERYFAILURE, "Delivery Failure (used for data_sm_resp)", False),
    # Nobody can say what went wrong; SMSCs send it for permanent refusals as often as for
    # faults, so retrying would mostly spend the retry budget and the SMSC's patience.
    (ESME_RUNKNOWNERR, "Unknown Error", False),
    # SMPP 5.0 additions.
    (ESME_RSERTYPUNAUTH, "ESME Not authorised to use specified service_type", False),
    (ESME_RPROHIBITED, "ESME Prohibited from using specified operation", False),
    # "Due to a service outage within the MC, a service is unavailable" (SMPP 5.0): passes.
    (ESME_RSERTYPUNAVAIL, "Specified service_type is unavailable", True),
    (ESME_RSERTYPDENIED, "Specified service_type is denied", False),
    (ESME_RINVDCS, "Invalid Data Coding Scheme", False),
    (ESME_RINVSRCADDRSUBUNIT, "Source Address Sub unit is Invalid", False),
    (ESME_RINVDSTADDRSUBUNIT, "Destination Address Sub unit is Invalid", False),
)

#: Every known command_status, by code.
#: The spec name of every code above: the constant's own name.
_NAMES = {
    value: constant for constant, value in list(globals().items()) if constant.startswith("ESME_")
}
STATUSES: dict[int, Status] = {code: Status(code, _NAMES[code], d, r) for code, d, r in _TABLE}

#: SMPP 5.0 renamed the TLV errors; both spellings find the same code in by_name().
_ALIASES = {
    "ESME_RINVTLVSTREAM": ESME_RINVOPTPARSTREAM,
    "ESME_RTLVNOTALLWD": ESME_ROPTPARNOTALLWD,
    "ESME_RINVTLVLEN": ESME_RINVPARLEN,
    "ESME_RMISSINGTLV": ESME_RMISSINGOPTPARAM,
    "ESME_RINVTLVVAL": ESME_RINVOPTPARAMVAL,
}
_BY_NAME = {s.name: s for s in STATUSES.values()} | {
    alias: STATUSES[code] for alias, code in _ALIASES.items()
}

#: The codes a retry can help, for logs and configuration defaults.
RETRYABLE = frozenset(code for code, s in STATUSES.items() if s.retryable)


def status(code: int) -> Status:
    """The Status for `code`; an unknown code gets a synthetic, permanent entry.

    Unknown codes are mostly SMSC vendor codes (0x400-0x4FF), used in practice for business
    refusals (no credit, barred or ported number, blocked content) that do not pass with time.
    Treating them as permanent stops a retry loop against an SMSC that will keep refusing;
    a carrier whose vendor code is known to be temporary belongs in configuration, not here.
    """
    known = STATUSES.get(code)
    if known is not None:
        return known
    return Status(code, f"0x{code:08X}", "vendor-specific or unknown status", False)


def is_retryable(code: int) -> bool:
    """True when resending the same PDU later may succeed (see the module docstring)."""
    return status(code).retryable


def name(code: int) -> str:
    """The spec name of `code` (e.g. "ESME_RTHROTTLED"), or "0x00000401" for unknown codes."""
    return status(code).name


def by_name(status_name: str) -> Status:
    """The Status for a spec name (SMPP 3.4 or 5.0 spelling, case-insensitive).

    Raises KeyError listing where names come from when the name is not known.
    """
    found = _BY_NAME.get(status_name.strip().upper())
    if found is None:
        raise KeyError(
            f"unknown SMPP status name {status_name!r}; use a name from smpp.codec.status.STATUSES "
            "such as 'ESME_RTHROTTLED'"
        )
    return found


def parse_status(text: str) -> int:
    """A status written by a person: 'ESME_RTHROTTLED', 'rthrottled', '0x58' or '88' -> 88.

    Raises KeyError (an unknown name) or ValueError (not a number)."""
    text = text.strip()
    if text[:1].isdigit():
        return int(text, 0)
    upper = text.upper()
    return by_name(upper if upper.startswith("ESME_") else "ESME_" + upper).code
