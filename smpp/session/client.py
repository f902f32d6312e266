"""A windowed, self-healing SMPP client session: the public face the delivery worker uses.

One bind = one thread that owns its socket(s) and does every read and write (smpplib's client is
not thread-safe). Other threads hand it work with :meth:`Session.submit`, which returns a
``concurrent.futures.Future`` that always resolves to a :class:`SubmitOutcome`; receipts, MO
messages and state changes come back through callbacks, which run on the session thread (keep
them short: hand off to a queue). See docs/session.md.

    session = Session(SessionConfig(host="smsc", port=2775, system_id="acct", password="pw"),
                      on_receipt=lambda receipt, info: ...)
    session.start()
    for request in requests_for_text("Shop", "4915551234567", "hello", method="udh", ref=7):
        outcome = session.submit(request).result()
    session.stop(timeout=10)
"""

from __future__ import annotations

import copy
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

from smpp.codec.receipt import Receipt
from smpp.session.bind import BindLoop
from smpp.session.inbound import SessionInfo
from smpp.session.mo import MoMessage
from smpp.session.state import Counters, SessionSnapshot, SessionState
from smpp.session.submit import OutcomeKind, SubmitOutcome, SubmitRequest, requests_for_text

__all__ = [
    "Counters",
    "MoMessage",
    "OutcomeKind",
    "Receipt",
    "Session",
    "SessionConfig",
    "SessionInfo",
    "SessionSnapshot",
    "SessionState",
    "SubmitOutcome",
    "SubmitRequest",
    "requests_for_text",
]

BIND_MODES = ("transceiver", "pair")
CONCAT_METHODS = ("udh", "udh16", "sar", "payload")


@dataclass(frozen=True)
class SessionConfig:
    """Everything one bind needs. Times are in seconds."""

    host: str  # SMSC host name or IP address
    port: int  # SMSC TCP port
    system_id: str  # bind system_id (the SMSC account), at most 15 characters
    password: str  # bind password, at most 8 characters
    system_type: str = ""  # bind system_type, when the SMSC asks for one
    bind_mode: str = (
        "transceiver"  # "transceiver" (one connection) or "pair" (transmitter + receiver)
    )
    window: int = 10  # submits in flight at once, awaiting their submit_sm_resp
    tps: float | None = None  # cap on submits per second for this bind; None = uncapped
    response_timeout: float = (
        10.0  # s to wait for a submit_sm_resp / enquire_link_resp / unbind_resp
    )
    connect_timeout: float = (
        10.0  # s for TCP connect and for the bind_resp (capped by response_timeout)
    )
    enquire_link_interval: float = 30.0  # s of silence from the SMSC before we send enquire_link
    reconnect_min: float = 1.0  # s: shortest wait before reconnecting (back-off start)
    reconnect_max: float = 60.0  # s: longest wait before reconnecting (back-off ceiling)
    unbind_grace: float = (
        1.0  # s the other bind of a pair waits for the SMSC's own unbind before we send ours
    )
    throttle_backoff: float = 1.0  # s to send nothing after an ESME_RTHROTTLED answer
    down_queue_timeout: float = 5.0  # s a queued submit waits for a bind before it is "not_sent"
    max_queued: int = 10_000  # submits waiting beyond this are refused at once as "not_sent"
    source_ton: int = (
        1  # source_addr_ton when the request leaves it None (1 international, 5 alphanumeric)
    )
    source_npi: int = 1  # source_addr_npi when the request leaves it None (1 ISDN/E.164, 0 unknown)
    dest_ton: int = 1  # dest_addr_ton for every submit (1 international)
    dest_npi: int = 1  # dest_addr_npi for every submit (1 ISDN/E.164)
    service_type: str = ""  # submit_sm service_type ("" = SMSC default)
    concat_method: str = (
        "udh"  # how long texts are split for this SMSC: "udh", "udh16", "sar" or "payload"
    )
    registered_delivery: int = (
        1  # registered_delivery when the request leaves it None (1 = receipt please)
    )
    mo_reassembly_timeout: float = 300.0  # s an incomplete multi-part MO message is kept
    name: str = ""  # this bind's name in logs, snapshots and SessionInfo

    def __post_init__(self) -> None:
        problems = []
        if self.bind_mode not in BIND_MODES:
            problems.append(f"bind_mode must be one of {BIND_MODES}, not {self.bind_mode!r}")
        if self.concat_method not in CONCAT_METHODS:
            problems.append(
                f"concat_method must be one of {CONCAT_METHODS}, not {self.concat_method!r}"
            )
        if self.window < 1:
            problems.append(f"window must be >= 1, not {self.window}")
        if self.tps is not None and self.tps <= 0:
            problems.append(f"tps must be > 0 or None (uncapped), not {self.tps}")
        for name in (
            "response_timeout",
            "connect_timeout",
            "enquire_link_interval",
            "reconnect_min",
            "down_queue_timeout",
            "mo_reassembly_timeout",
        ):
            if getattr(self, name) <= 0:
                problems.append(f"{name} must be > 0 seconds, not {getattr(self, name)}")
        if self.unbind_grace < 0:
            problems.append(f"unbind_grace must be >= 0 seconds, not {self.unbind_grace}")
        if self.reconnect_max < self.reconnect_min:
            problems.append("reconnect_max must be >= reconnect_min")
        if problems:
            raise ValueError(f"SessionConfig {self.name!r}: " + "; ".join(problems))
        if not self.name:
            object.__setattr__(self, "name", f"{self.system_id}@{self.host}:{self.port}")


class Session:
    """One SMPP bind with its own thread. Thread-safe: submit(), snapshot(), state and stop()
    may be called from any thread."""

    def __init__(
        self,
        config: SessionConfig,
        on_receipt: Callable[[Receipt, SessionInfo], None],
        on_mo: Callable[[MoMessage], None] | None = None,
        on_state: Callable[[SessionState], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        *,
        wall_clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        on_receipts: Callable[[list[Receipt], SessionInfo], None] | None = None,
    ) -> None:
        """``on_receipts``, when given, is called instead of ``on_receipt`` with every receipt
        of one read at once (they are answered after it returns; ESME_RX_T_APPN, all of
        them, when it raises): a caller storing receipts before they are answered pays one
        round trip per read."""
        self.config = config
        self._engine = BindLoop(
            config, on_receipt, on_mo, on_state, clock, wall_clock, rng, on_receipts=on_receipts
        )
        self._thread = threading.Thread(
            target=self._engine.run, daemon=True, name=f"smpp-session-{config.name}"
        )
        self._started = False

    def start(self) -> None:
        """Start the thread: it connects, binds and keeps the bind up until stop()."""
        if self._started:
            raise RuntimeError(
                f"session {self.config.name!r} already started; make a new Session to bind again"
            )
        self._started = True
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop taking work, wait up to ~timeout/2 for in-flight responses, unbind, close.
        Everything still queued resolves "not_sent"; what is still in flight resolves
        "timeout" (written). True when the thread ended within ``timeout``."""
        self._engine.request_stop(timeout)
        if not self._started:  # never started: nothing to unbind, just close
            self._started = True
            self._engine.run()
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def submit(self, request: SubmitRequest) -> Future[SubmitOutcome]:
        """Queue one submit_sm; the future always resolves to a SubmitOutcome (never raises).
        Queued while not bound, a request waits at most down_queue_timeout s, then resolves
        "not_sent"; after stop() or a refused bind it resolves "not_sent" at once."""
        if not self._started:
            raise RuntimeError(f"session {self.config.name!r}: call start() before submit()")
        return self._engine.submit(request)

    def submit_text(
        self,
        source_addr: str,
        destination_addr: str,
        text: str,
        *,
        ref: int = 0,
        tag: object = None,
    ) -> list[Future[SubmitOutcome]]:
        """Split ``text`` with this SMSC's concat_method and submit every part, in order."""
        return [
            self.submit(request)
            for request in requests_for_text(
                source_addr,
                destination_addr,
                text,
                method=self.config.concat_method,
                ref=ref,
                tag=tag,
            )
        ]

    @property
    def state(self) -> SessionState:
        return self._engine.state

    @property
    def info(self) -> SessionInfo:
        return self._engine.inbound.info

    def snapshot(self) -> SessionSnapshot:
        """A consistent-enough copy of state and counters for NOC status (no locking: each
        field is read once; counters may be a turn apart)."""
        e = self._engine
        counters = copy.copy(e.counters)
        counters.errors = dict(counters.errors)
        return SessionSnapshot(
            self.config.name,
            e.state,
            e.since,
            e.since_wall,
            e.stop_requested,
            len(e.window),
            len(e.queue),
            counters,
            e.last_error,
            e.last_error_at,
            e.enquire_rtt,
            e.enquire_at,
            e.down_since,
        )
