"""The published state of a session: an explicit enum, when it was entered, and counters.

The session thread is the only writer; other threads read :class:`SessionSnapshot` copies.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class SessionState(enum.StrEnum):
    """Where a bind is. ``down`` covers both "between reconnect attempts" and "stopped"
    (see ``SessionSnapshot.stopped``); ``bind_refused`` is final: the SMSC rejected the
    credentials and the session will not try again until it is restarted."""

    CONNECTING = "connecting"  # opening the TCP connection(s) and waiting for bind_resp
    BOUND = "bound"  # submits flow
    UNBINDING = "unbinding"  # an unbind is under way (ours or the SMSC's)
    DOWN = "down"  # no connection: waiting to reconnect, or stopped
    BIND_REFUSED = "bind_refused"  # bad system_id/password: no more attempts


@dataclass
class Counters:
    """Running totals since the session was created (never reset by reconnects)."""

    submitted: int = 0  # submit_sm PDUs written to a socket
    acked: int = 0  # submit_sm_resp with status 0
    errors: dict[int, int] = field(default_factory=dict)  # non-zero submit statuses: count
    timeouts: int = 0  # submits with no response within response_timeout
    throttled: int = 0  # submit_sm_resp ESME_RTHROTTLED
    not_sent: int = 0  # queued requests resolved "not_sent" (no bind in time, stop, refused bind)
    rejected: int = 0  # submit() calls answered "not_sent" at once (stopped, refused, queue full)
    lost_in_flight: int = 0  # in flight when the connection fell
    late_responses: int = 0  # submit_sm_resp for nothing in flight (after its timeout)
    responses: int = 0  # submit_sm_resp (or generic_nack) matched to a submit in flight
    response_seconds: float = 0.0  # their total time from write to response; / responses = mean
    reconnects: int = 0  # successful binds after the first
    bind_attempts: int = 0  # connection + bind attempts, successful or not
    receipts: int = 0  # delivery receipts handed to on_receipt
    mo: int = 0  # whole MO messages handed to on_mo
    callback_errors: int = 0  # on_receipt/on_mo raised (answered ESME_RX_T_APPN)
    enquire_links: int = 0  # enquire_link PDUs we sent (each answered, or we reconnected)
    malformed: int = 0  # PDUs that could not be decoded (each one costs a reconnect)
    generic_nacks_sent: int = 0  # unknown commands answered with generic_nack


@dataclass(frozen=True)
class SessionSnapshot:
    """A copy of a session's state for NOC status pages and health checks."""

    name: str
    state: SessionState
    since: float  # the session clock's reading when ``state`` was entered
    since_wall: float  # the same moment as a Unix timestamp
    stopped: bool  # stop() was called (state is then "down" for good)
    in_flight: int  # submits written and awaiting their response
    queued: int  # submits waiting for a window slot / the throttle / a bind
    counters: Counters  # a copy
    last_error: str | None  # the latest problem in words, with what to do about it
    last_error_at: float | None = None  # Unix time of ``last_error``
    enquire_link_rtt: float | None = None  # s from our latest answered enquire_link to its resp
    enquire_link_at: float | None = None  # Unix time that answer came
    down_since: float | None = None  # Unix time it left bound (or first failed); None while bound
