"""The status table: complete against smpplib and SMPP 3.4, and classified as the issue asks."""

from __future__ import annotations

import pytest
from smpplib import consts

from smpp.codec import status as status_module
from smpp.codec.status import (
    RETRYABLE,
    STATUSES,
    Status,
    by_name,
    is_retryable,
    name,
    parse_status,
    status,
)

SMPPLIB_CODES = {
    attr[len("SMPP_") :]: value
    for attr, value in vars(consts).items()
    if attr.startswith("SMPP_ESME_R")
}


def test_smpplib_knows_the_whole_3_4_table():
    assert len(SMPPLIB_CODES) == 48  # guards against this test silently checking nothing


@pytest.mark.parametrize("spec_name, code", sorted(SMPPLIB_CODES.items()))
def test_every_smpplib_code_has_the_same_name_here(spec_name, code):
    assert STATUSES[code].name == spec_name
    assert name(code) == spec_name
    assert STATUSES[code].code == code


def test_no_codes_beyond_smpplib_in_the_3_4_range():
    assert {c for c in STATUSES if c <= 0xFF} == set(SMPPLIB_CODES.values())


@pytest.mark.parametrize(
    "code",
    [
        0x58,  # ESME_RTHROTTLED
        0x14,  # ESME_RMSGQFUL
        0x08,  # ESME_RSYSERR
        0x64,  # ESME_RX_T_APPN
        0x04,  # ESME_RINVBNDSTS: the bind's fault, not the message's
        0x102,  # ESME_RSERTYPUNAVAIL: service outage in the SMSC (SMPP 5.0)
    ],
)
def test_retryable(code):
    assert is_retryable(code)
    assert status(code).retryable


@pytest.mark.parametrize(
    "code",
    [
        0x0B,  # ESME_RINVDSTADR
        0x0A,  # ESME_RINVSRCADR
        0x01,  # ESME_RINVMSGLEN
        0x65,  # ESME_RX_P_APPN
        0x66,  # ESME_RX_R_APPN
        0x45,  # ESME_RSUBMITFAIL
        0x43,  # ESME_RINVESMCLASS
        0x50,
        0x51,
        0x48,
        0x49,  # TON / NPI
        0x62,  # ESME_RINVEXPIRY
        0xC4,  # ESME_RINVOPTPARAMVAL
        0xFE,  # ESME_RDELIVERYFAILURE
        0xFF,  # ESME_RUNKNOWNERR
        0x104,  # ESME_RINVDCS
        0x00,  # ESME_ROK is not an error at all
    ],
)
def test_permanent(code):
    assert not is_retryable(code)


def test_retryable_set_is_exactly_the_justified_ones():
    assert RETRYABLE == {0x04, 0x08, 0x14, 0x58, 0x64, 0x102}


@pytest.mark.parametrize("code", [0x401, 0x09, 0x4FF, 0x12345678])
def test_unknown_codes_are_named_by_hex_and_permanent(code):
    assert status(code) == Status(code, f"0x{code:08X}", "vendor-specific or unknown status", False)
    assert not is_retryable(code)
    assert name(0x401) == "0x00000401"


def test_by_name_takes_3_4_and_5_0_spellings():
    assert by_name("ESME_RTHROTTLED").code == 0x58
    assert by_name(" esme_rinvtlvval ").code == 0xC4  # SMPP 5.0 name of ESME_RINVOPTPARAMVAL
    with pytest.raises(KeyError, match="ESME_RTHROTTLED"):
        by_name("ESME_RNOPE")


def test_str_names_code_and_meaning():
    assert str(status(0x58)) == (
        "ESME_RTHROTTLED (0x00000058): Throttling error (ESME has exceeded allowed message limits)"
    )


def test_every_status_is_a_constant_of_its_own_name():
    constants = {n: v for n, v in vars(status_module).items() if n.startswith("ESME_")}
    assert constants == {s.name: s.code for s in STATUSES.values()}
    assert status_module.ESME_ROK == 0x00
    assert status_module.ESME_RTHROTTLED == 0x58
    assert status_module.ESME_RX_T_APPN == 0x64
    assert status_module.ESME_RINVDSTADDRSUBUNIT == 0x106


@pytest.mark.parametrize(
    "text, code",
    [("ESME_RTHROTTLED", 0x58), (" rthrottled ", 0x58), ("0x58", 0x58), ("88", 0x58), ("0", 0)],
)
def test_parse_status_takes_names_with_or_without_prefix_and_numbers(text, code):
    assert parse_status(text) == code


def test_parse_status_names_what_it_cannot_read():
    with pytest.raises(KeyError, match="ESME_RTHROTTLED"):
        parse_status("RNOPE")
    with pytest.raises(ValueError):
        parse_status("0xZZ")
