"""What settlement keeps of a receipt: its error code and its dates, as stored values.

Receipt dates are the SMSC's wall clock with no zone (SMPP 3.4 Appendix B). Unless the session
parsed them with the SMSC's zone (``parse_receipt(..., tz=...)``, giving aware datetimes), they
are read as UTC: most SMSCs run on UTC, and a wrong zone shifts ``done_at`` by whole hours
rather than losing it. Configure the zone at the session when an SMSC is known to differ.
"""

from __future__ import annotations

from datetime import UTC, datetime

from smpp.codec.receipt import Receipt

ERROR_CODE_MAX = 32  # messages.error_code / message_parts.error_code width


def utc_date(value: datetime | None) -> datetime | None:
    """An aware UTC datetime: naive SMSC times are taken as UTC (see the module docstring)."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _network_error(raw: bytes | None) -> str | None:
    """network_error_code TLV (type octet, 2-octet code) as "net<type>:<code>", None if 0."""
    if not raw or len(raw) != 3:
        return None
    code = int.from_bytes(raw[1:], "big")
    return f"net{raw[0]}:{code}" if code else None


def receipt_error(receipt: Receipt) -> str | None:
    """The receipt's error: ``err:`` when not all zeros, and/or the network error TLV.

    "000" (or no err) with no network error is None; both present: "<err>/net<type>:<code>".
    """
    err = (receipt.err or "").strip()
    found = [err] if err.strip("0") else []
    net = _network_error(receipt.network_error)
    if net:
        found.append(net)
    return "/".join(found)[:ERROR_CODE_MAX] or None
