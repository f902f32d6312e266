"""Mobile-originated messages as the simulated SMSC sends them: deliver_sm bodies, one per part,
concatenated with a UDH, SAR TLVs or message_payload (the codec's own segmentation)."""

from __future__ import annotations

from smpp.codec import build_submit_parts
from smpp.codec.pdu import ShortMessage


def _ton_npi(address: str) -> tuple[int, int]:
    """International (1/1) for digits, alphanumeric (5/0) otherwise."""
    return (1, 1) if address.isdigit() else (5, 0)


def mo_messages(
    source: str,
    dest: str,
    text: str,
    parts_method: str | None,
    ref: int,
    data_coding: int | None = None,
) -> list[ShortMessage]:
    """deliver_sm bodies for ``text`` from handset ``source`` to ``dest``.

    ``parts_method`` None sends one PDU (ValueError if the text needs more: pass "udh", "sar"
    or "payload"); "udh"/"udh16" set esm_class 0x40. ``data_coding`` overrides the codec's
    choice (GSM 03.38 when it can, else UCS-2) for the data_coding field only.
    """
    parts = build_submit_parts(text, method=parts_method or "udh", ref=ref)
    if parts_method is None and len(parts) > 1:
        raise ValueError(
            f"text needs {len(parts)} parts; pass parts_method='udh', 'sar' or "
            "'payload' to send it concatenated"
        )
    ston, snpi = _ton_npi(source)
    dton, dnpi = _ton_npi(dest)
    return [
        ShortMessage(
            source_addr_ton=ston,
            source_addr_npi=snpi,
            source_addr=source,
            dest_addr_ton=dton,
            dest_addr_npi=dnpi,
            destination_addr=dest,
            esm_class=p.esm_class,
            data_coding=p.data_coding if data_coding is None else data_coding,
            short_message=p.short_message,
            tlvs=dict(p.tlvs),
        )
        for p in parts
    ]
