"""What a caller hands the session (:class:`SubmitRequest`, one submit_sm's worth) and what it
gets back (:class:`SubmitOutcome`), plus :func:`requests_for_text`, which turns a text into
requests with the same segmentation the accept path prices (``smpp.codec``), and
:func:`submit_body`, the request's submit_sm body under a session's settings.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from smpp.codec import build_submit_parts, pdu
from smpp.codec.smpp_time import absolute_time, relative_time

if TYPE_CHECKING:  # pragma: no cover
    from smpp.session.client import SessionConfig

#: How a submit ended, from the caller's point of view.
#: ok: the SMSC accepted it (message_id set). retryable: the SMSC refused it for now (e.g.
#: ESME_RTHROTTLED, ESME_RMSGQFUL) or the connection fell while it was in flight — may be sent
#: again, but see ``written``. permanent: the SMSC refused it for good. timeout: no answer within
#: response_timeout; it may or may not have been accepted. not_sent: never written to a socket.
OutcomeKind = Literal["ok", "retryable", "permanent", "timeout", "not_sent"]


@dataclass(frozen=True, slots=True)
class SubmitRequest:
    """One submit_sm. Fields left None take the session's configured value.

    ``destination_addr`` is international digits without '+'; ``short_message`` is already
    encoded (and carries its UDH when ``esm_class`` has 0x40); ``tlvs`` are (tag, value bytes)
    pairs, e.g. SAR or message_payload from ``smpp.codec.build_submit_parts``. ``tag`` is
    anything the caller wants back in the outcome (a message row id, a part number...).
    """

    source_addr: str
    destination_addr: str
    short_message: bytes
    esm_class: int = 0
    data_coding: int = 0
    tlvs: tuple[tuple[int, bytes], ...] = ()
    registered_delivery: int | None = None  # None: SessionConfig.registered_delivery
    source_ton: int | None = None  # None: SessionConfig.source_ton (5 for alphanumeric senders)
    source_npi: int | None = None  # None: SessionConfig.source_npi
    validity_period: str = ""  # SMPP time (smpp.codec.smpp_time); "" = the SMSC's default
    # epoch seconds the validity ends; when set, validity_period is written from it as the body
    # is encoded: the absolute UTC moment, or with relative_validity the time left then
    validity_until: float | None = None
    relative_validity: bool = False  # write validity_until in the relative form ("...000R")
    tag: object = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class SubmitOutcome:
    """The end of one submit. ``status`` is the SMPP command_status (0 when ok; 0 too for
    timeout/not_sent, which have no SMSC answer); ``written`` is True when the PDU's bytes may
    have reached the socket, so sending it again could deliver the message twice.
    ``error`` says in words what happened when kind is not "ok"."""

    kind: OutcomeKind
    status: int
    message_id: str | None
    written: bool
    tag: object = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.kind == "ok"


def requests_for_text(
    source_addr: str,
    destination_addr: str,
    text: str,
    *,
    method: str = "udh",
    ref: int = 0,
    tag: object = None,
    registered_delivery: int | None = None,
) -> list[SubmitRequest]:
    """The SubmitRequests that carry ``text`` (one per part), concatenated with ``method``
    ("udh", "udh16", "sar" or "payload") under reference ``ref``. Each request's tag is
    ``(tag, part_number)``. Raises ValueError as ``build_submit_parts`` does."""
    return [
        SubmitRequest(
            source_addr,
            destination_addr,
            part.short_message,
            esm_class=part.esm_class,
            data_coding=part.data_coding,
            tlvs=tuple(part.tlvs),
            registered_delivery=registered_delivery,
            tag=(tag, part.part),
        )
        for part in build_submit_parts(text, method=method, ref=ref)
    ]


def validity_field(r: SubmitRequest, now: float | None = None) -> str:
    """The validity_period ``r`` writes at epoch ``now`` (default: the clock now): its
    ``validity_until`` in its form, else its ``validity_period`` as given."""
    if r.validity_until is None:
        return r.validity_period
    if not r.relative_validity:
        return absolute_time(r.validity_until)
    return relative_time(r.validity_until - (time.time() if now is None else now))


def submit_body(r: SubmitRequest, cfg: SessionConfig, now: float | None = None) -> bytes:
    """The submit_sm body (no header: the sequence number comes later) for ``r``, fields it
    leaves None taken from ``cfg``, its validity as of epoch ``now`` (default: the clock now).
    PduError (with the status to report) when it cannot be encoded."""
    try:
        tlvs = dict(r.tlvs) if r.tlvs else {}
    except (TypeError, ValueError) as exc:
        raise pdu.PduError(f"tlvs must be (tag, bytes) pairs: {exc}") from None
    return pdu.short_message_body(
        pdu.ShortMessage(
            cfg.service_type,
            cfg.source_ton if r.source_ton is None else r.source_ton,
            cfg.source_npi if r.source_npi is None else r.source_npi,
            r.source_addr,
            cfg.dest_ton,
            cfg.dest_npi,
            r.destination_addr,
            r.esm_class,
            0,
            0,
            "",
            validity_field(r, now),
            cfg.registered_delivery if r.registered_delivery is None else r.registered_delivery,
            0,
            r.data_coding,
            0,
            r.short_message,
            tlvs,
        )
    )
