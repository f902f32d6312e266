"""The session thread: the one thread that owns a bind's socket(s) and does every read and write.

Its life is a loop of connect + bind (:mod:`smpp.session.transport`), serve, and reconnect with
back-off. Serving is a ``select`` loop over the SMSC socket(s) and a wake-up socket that other
threads poke when they queue work; each turn it reads and dispatches whole PDUs, expires what
has waited too long, fills the window from the queue within the rate cap, and writes.
Other threads only append to ``queue`` (through :meth:`BindLoop.submit`, which also encodes the
submit_sm body there, off this thread's turns) and read the counters.
"""

from __future__ import annotations

import logging
import math
import random
import select
import socket
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING

from smpp.codec import pdu
from smpp.codec.receipt import Receipt
from smpp.codec.status import ESME_RINVCMDID, ESME_RTHROTTLED, is_retryable
from smpp.codec.status import status as status_info
from smpp.session.inbound import Inbound, SessionInfo
from smpp.session.mo import MoMessage, Reassembler
from smpp.session.state import Counters, SessionState
from smpp.session.submit import OutcomeKind, SubmitOutcome, SubmitRequest, submit_body
from smpp.session.throttle import Backoff, RateLimiter
from smpp.session.transport import BindRefused, Connection, ConnectionLost, open_bound
from smpp.session.window import Pending, Window

if TYPE_CHECKING:
    from smpp.session.client import SessionConfig

log = logging.getLogger("smpp.session")

_HEADER = pdu.HEADER.unpack_from
_MAX_SELECT = 1.0  # seconds; an upper bound on one select() so nothing can stall a turn


class BindLoop:
    """State and loop of one session thread; :class:`smpp.session.client.Session` is its public face."""

    def __init__(
        self,
        config: SessionConfig,
        on_receipt: Callable[[Receipt, SessionInfo], None],
        on_mo: Callable[[MoMessage], None] | None,
        on_state: Callable[[SessionState], None] | None,
        clock: Callable[[], float],
        wall_clock: Callable[[], float],
        rng: random.Random | None,
        on_receipts: Callable[[list[Receipt], SessionInfo], None] | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.wall_clock = wall_clock
        self.on_state = on_state
        self.counters = Counters()
        self.state = SessionState.DOWN
        self.since, self.since_wall = clock(), wall_clock()
        # Unix time the bind left ``bound`` (or first failed, if never bound); None while bound.
        # Reconnect attempts leave it alone, so "down for" counts from the real outage.
        self.down_since: float | None = None
        self.last_error: str | None = None
        self.last_error_at: float | None = None  # wall clock of last_error
        self.enquire_rtt: float | None = None  # s, the latest answered enquire_link's round trip
        self.enquire_at: float | None = None  # wall clock of that answer
        # (future, request, queued at, submit_sm body without its header)
        self.queue: deque[tuple[Future[SubmitOutcome], SubmitRequest, float, bytes]] = deque()
        self.closed = False  # no more submits: stopped or bind refused
        self.stop_requested = False
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._wake_pending = False
        self.window = Window(config.window)
        self.limiter = RateLimiter(config.tps)
        self.backoff = Backoff(config.reconnect_min, config.reconnect_max, rng)
        self.reassembler = Reassembler(config.mo_reassembly_timeout)
        info = SessionInfo(config.name, config.system_id, config.host, config.port)
        self.inbound = Inbound(
            info, on_receipt, on_mo, self.reassembler, self.counters, on_receipts=on_receipts
        )
        self.tx: Connection | None = None
        self.conns: list[Connection] = []
        self._stop_deadline = self._drain_deadline = self._unbind_deadline = math.inf
        self._own_unbind_at = math.inf  # when we unbind the binds the SMSC has not unbound
        self._unbinding = False

    # ------------------------------------------------------------------ other threads

    def submit(self, request: SubmitRequest) -> Future[SubmitOutcome]:
        """Queue ``request``; the future resolves to a SubmitOutcome (always, eventually).
        The body is encoded here, on the caller's thread: the session thread then only adds
        a header, so its turn between a batch of responses and the next submits stays short."""
        future: Future[SubmitOutcome] = Future()
        try:
            body = submit_body(request, self.config)
        except pdu.PduError as exc:
            outcome = SubmitOutcome(
                "permanent", exc.status, None, False, request.tag, f"cannot encode submit_sm: {exc}"
            )
        else:
            with self._lock:
                if not self.closed and len(self.queue) < self.config.max_queued:
                    self.queue.append((future, request, self.clock(), body))
                    self._wake()
                    return future
                reason = (
                    (
                        f"session {self.config.name!r} is not accepting submits "
                        f"({self.state.value}): {self.last_error or 'stopped'}"
                    )
                    if self.closed
                    else f"session queue full ({self.config.max_queued} waiting); slow down"
                )
                self.counters.rejected += 1  # only ever written under the lock
            outcome = SubmitOutcome("not_sent", 0, None, False, request.tag, reason)
        future.set_running_or_notify_cancel()
        future.set_result(outcome)
        return future

    def request_stop(self, timeout: float) -> None:
        """Ask the thread to finish in-flight work, unbind and end within ``timeout`` s."""
        now = self.clock()
        self._stop_deadline = now + timeout
        self._drain_deadline = now + min(self.config.response_timeout, timeout / 2)
        self.stop_requested = True
        with self._lock:
            if not self.closed:
                self._wake()

    def _wake(self) -> None:
        if not self._wake_pending:
            self._wake_pending = True
            try:
                self._wake_w.send(b"w")
            except BlockingIOError:
                pass  # the wake-up socket is full, so a wake-up is already pending

    # ------------------------------------------------------------------ life cycle

    def run(self) -> None:
        """The thread's body: never raises, always resolves every future before it ends."""
        try:
            self._lifecycle()
        except BaseException as exc:  # a bug here must not leave futures hanging
            log.exception("%s: session thread failed", self.config.name)
            self.last_error = f"session thread failed: {exc!r}; restart the session"
            self.last_error_at = self.wall_clock()
        finally:
            self._close_connections()
            self._finish()

    def _lifecycle(self) -> None:
        ever_bound = False
        while not self.stop_requested:
            self._set_state(SessionState.CONNECTING)
            self.counters.bind_attempts += 1
            try:
                self._connect()
            except BindRefused as exc:
                if exc.final:
                    self._error(
                        f"{exc}: the credentials are wrong; fix system_id/password "
                        "in the SMSC configuration and restart (no more attempts)"
                    )
                    self._set_state(SessionState.BIND_REFUSED)
                    return
                self._down(f"{exc}; retrying with back-off")
                continue
            except ConnectionLost as exc:
                self._down(f"{exc}; retrying with back-off")
                continue
            self.counters.reconnects += ever_bound
            ever_bound = True
            bound_at = self.clock()
            self._set_state(SessionState.BOUND)
            self._serve_until_lost()
            if self.clock() - bound_at >= self.config.reconnect_max:
                self.backoff.reset()
            if not self.stop_requested:
                self._down(None)

    def _down(self, error: str | None) -> None:
        if error:
            self._error(error)
        self._set_state(SessionState.DOWN)
        self._pause(self.backoff.next_delay())

    def _connect(self) -> None:
        cfg = self.config
        credentials = {
            "system_id": cfg.system_id,
            "password": cfg.password,
            "system_type": cfg.system_type,
            "addr_ton": 0,
            "addr_npi": 0,
            "address_range": "",
        }
        timeout = min(cfg.response_timeout, cfg.connect_timeout)
        roles = ("transceiver",) if cfg.bind_mode == "transceiver" else ("transmitter", "receiver")
        for role in roles:
            try:
                conn = open_bound(cfg.host, cfg.port, role, credentials, timeout, cfg.name)
            except (BindRefused, ConnectionLost):
                self._close_connections()
                raise
            conn.last_rx = self.clock()
            self.conns.append(conn)
        self.tx = self.conns[0]
        self._unbinding = False
        self._own_unbind_at = self._unbind_deadline = math.inf

    def _serve_until_lost(self) -> None:
        """Serve the bound connection(s) until they fall or stop() completes; then close."""
        try:
            self._serve()
        except ConnectionLost as exc:
            self._error(f"{exc}")
        except pdu.PduError as exc:
            self.counters.malformed += 1
            self._error(f"malformed PDU from the SMSC ({exc}); reconnecting")
        except Exception as exc:  # a bug while serving: reconnect rather than die
            log.exception("%s: unexpected error while bound", self.config.name)
            self._error(f"internal error while bound: {exc!r}; reconnecting")
        finally:
            self._close_connections()

    def _pause(self, delay: float) -> None:
        """Wait ``delay`` s between attempts; stop() cuts it short. Queued submits that have
        waited down_queue_timeout meanwhile resolve "not_sent"."""
        end = self.clock() + delay
        while not self.stop_requested:
            now = self.clock()
            self._expire_queue(now)
            if now >= end:
                return
            wait = end - now
            if self.queue:
                wait = min(wait, self.queue[0][2] + self.config.down_queue_timeout - now)
            select.select([self._wake_r], [], [], min(max(wait, 0.0), _MAX_SELECT))
            self._drain_wake()

    def _finish(self) -> None:
        with self._lock:
            self.closed = True
        reason = self.last_error if self.state == SessionState.BIND_REFUSED else "session stopped"
        while self.queue:
            future, request, _, _ = self.queue.popleft()
            self._resolve_queued(future, request, f"not sent: {reason}")
        if self.state != SessionState.BIND_REFUSED:
            self._set_state(SessionState.DOWN)
        self._wake_r.close()
        self._wake_w.close()

    # ------------------------------------------------------------------ serving

    def _serve(self) -> None:
        wake = self._wake_r
        while True:
            now = self.clock()
            if (
                self.stop_requested
                and not self._unbinding
                and (not self.window or now >= self._drain_deadline)
            ):
                self._begin_unbind(now, own_at=now)
            if self._unbinding:
                if now >= self._own_unbind_at:
                    self._unbind_the_rest()
                if all(c.unbound for c in self.conns) or now >= min(
                    self._unbind_deadline, self._stop_deadline
                ):
                    return
            self._expire(now)
            if not (self.stop_requested or self._unbinding):
                self._fill(now)
            for conn in list(self.conns):
                self._flush(conn)
            timeout = self._select_timeout(now)
            writers = [c for c in self.conns if c.wants_write]
            watched: list[socket.socket | Connection] = [wake, *self.conns]
            readable, _, _ = select.select(watched, writers, [], timeout)
            now = self.clock()
            for ready in readable:
                if not isinstance(ready, Connection):  # the wake-up socket
                    self._drain_wake()
                    continue
                try:
                    self._read(ready, now)
                except ConnectionLost:
                    if not self._drop_unbinding(ready):
                        raise

    def _flush(self, conn: Connection) -> None:
        try:
            conn.flush()
        except ConnectionLost:
            if not self._drop_unbinding(conn):
                raise

    def _drop_unbinding(self, conn: Connection) -> bool:
        """A bind hung up. When its unbind exchange is over or under way (either side's), that
        ends the bind, not the session: close and forget it, True. Else False: the caller
        re-raises and the session reconnects."""
        if not (conn.unbound or conn.unbind_sequence is not None):
            return False
        conn.close()  # it hung up after (or instead of) answering the unbind
        conn.unbound = True
        if conn in self.conns:
            self.conns.remove(conn)
        return True

    def _read(self, conn: Connection, now: float) -> None:
        frames = conn.receive()
        lost = None
        if frames:
            conn.last_rx = now
            if conn is self.tx and not (self.stop_requested or self._unbinding):
                lost = self._refill_first(conn, frames, now)
        held: list[tuple[int, int, Receipt]] = []  # receipts of this read, answered together
        for frame in frames:
            try:
                self._dispatch(conn, frame, now, held)
            except pdu.PduError as exc:
                if exc.sequence is None:
                    exc.command_id, exc.sequence = _HEADER(frame)[1], _HEADER(frame)[3]
                self._answer_receipts(conn, held)
                self._nack_malformed(conn, exc)
                raise
        self._answer_receipts(conn, held)
        if conn.framing_error is not None:
            self._nack_malformed(conn, conn.framing_error)
            raise conn.framing_error
        if lost is not None:
            raise lost  # the answers above were still handed over

    def _refill_first(
        self, tx: Connection, frames: list[bytes], now: float
    ) -> ConnectionLost | None:
        """Free the window slots this batch of submit_sm_resp answers and write the next
        submits before acting on the batch (decoding, resolving futures, their callbacks).
        The SMSC's hold on those submits starts when they leave, so at window 50 the ~0.2 ms a
        batch takes to resolve is not added to every round trip. A failed write is returned,
        to be raised once the batch has been handed over."""
        window, freed = self.window, False
        for frame in frames:
            _length, command, status, sequence = _HEADER(frame)
            if command == pdu.SUBMIT_SM_RESP and window.answered(sequence):
                freed = True
                if status == ESME_RTHROTTLED:  # pause before refilling, not after
                    self.limiter.pause(now + self.config.throttle_backoff)
        if freed:
            self._fill(now)
            try:
                tx.flush()
            except ConnectionLost as exc:
                return exc
        return None

    def _dispatch(
        self, conn: Connection, frame: bytes, now: float, held: list[tuple[int, int, Receipt]]
    ) -> None:
        """Act on one whole PDU from the SMSC. With ``on_receipts``, a receipt is added to
        ``held``, handed over and answered with the other receipts of the read
        (:meth:`_answer_receipts`); else it is handed to ``on_receipt`` at once."""
        _length, command, status, sequence = _HEADER(frame)
        if command == pdu.SUBMIT_SM_RESP:
            self._on_submit_resp(conn, sequence, status, frame, now)
        elif command in (pdu.DELIVER_SM, pdu.DATA_SM):
            taken = self.inbound.take(command, frame[pdu.HEADER_LENGTH :], now)
            if isinstance(taken, int):  # an MO (stored or refused) or an unreadable receipt
                conn.write(_message_resp(command, sequence, taken))
            elif self.inbound.on_receipts is None:  # one call per receipt, in arrival order
                conn.write(_message_resp(command, sequence, self.inbound.hand_over([taken])[0]))
            else:
                held.append((command, sequence, taken))
        elif command == pdu.ENQUIRE_LINK:
            conn.write(pdu.encode_enquire_link_resp(sequence))
        elif command == pdu.ENQUIRE_LINK_RESP or (
            command == pdu.GENERIC_NACK and sequence == conn.enquire_sequence
        ):
            if sequence == conn.enquire_sequence:
                conn.enquire_sequence = None  # the link is alive, whatever it thought of it
                self.enquire_rtt = now - conn.enquire_sent
                self.enquire_at = self.wall_clock()
        elif command == pdu.UNBIND:
            self._on_smsc_unbind(conn, sequence, now)
        elif command == pdu.UNBIND_RESP:
            conn.unbound = conn.unbound or sequence == conn.unbind_sequence
        elif command == pdu.GENERIC_NACK:
            self._on_submit_resp(conn, sequence, status or ESME_RINVCMDID, frame, now)
        elif command == pdu.ALERT_NOTIFICATION:
            log.info("%s: alert_notification from the SMSC ignored", self.config.name)
        elif command & pdu.RESPONSE_BIT:
            log.debug("%s: unexpected %s ignored", self.config.name, pdu.command_name(command))
        else:
            self.counters.generic_nacks_sent += 1
            log.warning(
                "%s: SMSC sent %s; answered generic_nack ESME_RINVCMDID",
                self.config.name,
                pdu.command_name(command),
            )
            conn.write(pdu.encode_generic_nack(sequence, ESME_RINVCMDID))

    def _answer_receipts(self, conn: Connection, held: list[tuple[int, int, Receipt]]) -> None:
        """Hand the read's receipts over in one callback, then answer each (in order)."""
        if not held:
            return
        answers = self.inbound.hand_over([receipt for _c, _s, receipt in held])
        for (command, sequence, _receipt), answer in zip(held, answers, strict=True):
            conn.write(_message_resp(command, sequence, answer))
        held.clear()

    def _on_submit_resp(
        self, conn: Connection, sequence: int, status: int, frame: bytes, now: float
    ) -> None:
        pending = self.window.pop(sequence) if conn is self.tx else None
        if pending is None:
            self.counters.late_responses += 1
            return
        tag = pending.request.tag
        self.counters.response_seconds += now - pending.deadline + self.config.response_timeout
        self.counters.responses += 1
        if status == 0:
            try:
                message_id = pdu.decode_submit_sm_resp(frame[pdu.HEADER_LENGTH :])
            except pdu.PduError:
                self._resolve(
                    pending.future,
                    SubmitOutcome(
                        "timeout",
                        0,
                        None,
                        True,
                        tag,
                        "unreadable submit_sm_resp; the SMSC may have accepted it",
                    ),
                )
                raise
            self.counters.acked += 1
            pending.future.set_result(SubmitOutcome("ok", 0, message_id, True, tag))
            return
        errors = self.counters.errors
        errors[status] = errors.get(status, 0) + 1
        if status == ESME_RTHROTTLED:
            self.counters.throttled += 1
            self.limiter.pause(now + self.config.throttle_backoff)
        retry = status == ESME_RTHROTTLED or is_retryable(status)
        kind: OutcomeKind = "retryable" if retry else "permanent"
        self._resolve(
            pending.future,
            SubmitOutcome(kind, status, None, True, tag, f"SMSC refused it: {status_info(status)}"),
        )

    def _fill(self, now: float) -> None:
        """Write queued submits while the window has room and the rate cap allows."""
        queue, window, conn, limiter = self.queue, self.window, self.tx, self.limiter
        if conn is None:
            return  # not bound
        deadline = now + self.config.response_timeout
        encode, submit_sm = pdu.encode_pdu, pdu.SUBMIT_SM
        while queue and window.free > 0 and limiter.take(now):
            future, request, _, body = queue.popleft()
            if not future.set_running_or_notify_cancel():
                continue  # the caller cancelled it while it was queued
            sequence = conn.next_sequence()
            offset = conn.write(encode(submit_sm, 0, sequence, body))
            window.add(sequence, Pending(future, request, deadline, offset))
            self.counters.submitted += 1

    # ------------------------------------------------------------------ timers

    def _expire(self, now: float) -> None:
        for pending in self.window.expired(now):
            self.counters.timeouts += 1
            self._resolve(
                pending.future,
                SubmitOutcome(
                    "timeout",
                    0,
                    None,
                    True,
                    pending.request.tag,
                    f"no submit_sm_resp within {self.config.response_timeout}s; the SMSC may have "
                    "accepted it",
                ),
            )
        for conn in self.conns:
            if conn.unbound:
                continue  # its unbind exchange is over: nothing more to ask of it
            if conn.enquire_sequence is not None:
                if now >= conn.enquire_deadline:
                    raise ConnectionLost(
                        f"no enquire_link_resp within "
                        f"{self.config.response_timeout}s: link dead; reconnecting"
                    )
            elif now - conn.last_rx >= self.config.enquire_link_interval and not self._unbinding:
                conn.enquire_sequence = conn.next_sequence()
                conn.enquire_deadline = now + self.config.response_timeout
                conn.enquire_sent = now
                self.counters.enquire_links += 1
                conn.write(pdu.encode_enquire_link(conn.enquire_sequence))
        expiry = self.reassembler.next_expiry()
        if expiry is not None and expiry <= now:
            self.reassembler.expire(now)

    def _select_timeout(self, now: float) -> float:
        times = [now + _MAX_SELECT]
        deadline = self.window.next_deadline()
        if deadline is not None:
            times.append(deadline)
        for conn in self.conns:
            times.append(
                conn.enquire_deadline
                if conn.enquire_sequence is not None
                else conn.last_rx + self.config.enquire_link_interval
            )
        if self.queue and self.window.free > 0 and not self.stop_requested:
            times.append(now + self.limiter.delay(now))
        expiry = self.reassembler.next_expiry()
        if expiry is not None:
            times.append(expiry)
        if self._unbinding:
            times.append(
                self._own_unbind_at if now < self._own_unbind_at else self._unbind_deadline
            )
        elif self.stop_requested:
            times.append(self._drain_deadline)
        times.append(self._stop_deadline)
        return max(0.0, min(times) - now)

    def _expire_queue(self, now: float) -> None:
        limit = self.config.down_queue_timeout
        while self.queue and now - self.queue[0][2] >= limit:
            future, request, _, _ = self.queue.popleft()
            self._resolve_queued(
                future,
                request,
                f"not sent: no bind for {limit}s ({self.last_error or 'connecting'})",
            )

    def _on_smsc_unbind(self, conn: Connection, sequence: int, now: float) -> None:
        """Answer the SMSC's unbind on this bind at once, whatever else is under way. The
        session then ends the binding as a whole: a pair works only with both binds, so the
        other bind gets unbind_grace for the SMSC's own unbind (answered the same way) before
        we unbind it ourselves; then the session closes and binds again."""
        conn.write(pdu.encode_unbind_resp(sequence))
        conn.unbound = True
        self._flush(conn)
        if not self._unbinding:
            self._error("the SMSC unbound (answered unbind_resp); reconnecting")
            self._begin_unbind(now, own_at=now + self.config.unbind_grace)

    def _begin_unbind(self, now: float, own_at: float) -> None:
        """Stop submitting; at ``own_at`` unbind every bind the SMSC has not unbound, and give
        up waiting for the answers response_timeout later."""
        self._unbinding = True
        self._set_state(SessionState.UNBINDING)
        self._own_unbind_at = own_at
        self._unbind_deadline = own_at + self.config.response_timeout

    def _unbind_the_rest(self) -> None:
        for conn in self.conns:
            if not conn.unbound and conn.unbind_sequence is None:
                conn.unbind_sequence = conn.next_sequence()
                conn.write(pdu.encode_unbind(conn.unbind_sequence))

    # ------------------------------------------------------------------ helpers

    def _close_connections(self) -> None:
        """Close the socket(s); what was in flight resolves "timeout" when its bytes may have
        left, else "not_sent"."""
        sent = self.tx.sent if self.tx is not None else 0
        for pending in self.window.drain():
            if pending.offset < sent:
                self.counters.lost_in_flight += 1
                self._resolve(
                    pending.future,
                    SubmitOutcome(
                        "timeout",
                        0,
                        None,
                        True,
                        pending.request.tag,
                        f"connection lost awaiting submit_sm_resp ({self.last_error}); the SMSC "
                        "may have accepted it",
                    ),
                )
            else:
                self.counters.not_sent += 1
                self._resolve(
                    pending.future,
                    SubmitOutcome(
                        "not_sent",
                        0,
                        None,
                        False,
                        pending.request.tag,
                        f"connection lost before it was written ({self.last_error})",
                    ),
                )
        for conn in self.conns:
            conn.close()
        self.conns = []
        self.tx = None

    def _nack_malformed(self, conn: Connection, exc: pdu.PduError) -> None:
        """Best effort: tell the SMSC which PDU we could not read before we hang up."""
        if exc.sequence is not None and not (exc.command_id or 0) & pdu.RESPONSE_BIT:
            conn.write(pdu.encode_generic_nack(exc.sequence, exc.status))
            try:
                conn.flush()
            except ConnectionLost as lost:
                log.debug("%s: generic_nack not sent: %s", self.config.name, lost)

    def _resolve(self, future: Future[SubmitOutcome], outcome: SubmitOutcome) -> None:
        future.set_result(outcome)

    def _resolve_queued(
        self, future: Future[SubmitOutcome], request: SubmitRequest, error: str
    ) -> None:
        self.counters.not_sent += 1
        if future.set_running_or_notify_cancel():
            future.set_result(SubmitOutcome("not_sent", 0, None, False, request.tag, error))

    def _drain_wake(self) -> None:
        """Empty the wake-up socket, THEN clear the flag. Clearing first lost wake-ups: a
        submitter that set the flag in between had its byte drained here, and every later
        submitter saw the flag still set and sent none, so their work waited for the next
        select timeout (up to a second). The serve loop runs _fill() right after this, so an
        item queued while the flag was still set is picked up on this same turn."""
        try:
            while self._wake_r.recv(4096):
                pass
        except BlockingIOError:
            pass  # drained
        self._wake_pending = False

    def _set_state(self, state: SessionState) -> None:
        if state == self.state:
            return
        now_wall = self.wall_clock()
        if state == SessionState.BOUND:
            self.down_since = None
        elif self.down_since is None and (
            self.state == SessionState.BOUND
            or state in (SessionState.DOWN, SessionState.BIND_REFUSED)
        ):
            self.down_since = now_wall
        self.state = state
        self.since, self.since_wall = self.clock(), now_wall
        log.info("%s: %s", self.config.name, state.value)
        if self.on_state is not None:
            try:
                self.on_state(state)
            except Exception:
                log.exception("%s: on_state callback failed (ignored)", self.config.name)

    def _error(self, text: str) -> None:
        self.last_error, self.last_error_at = text, self.wall_clock()
        log.warning("%s: %s", self.config.name, text)


def _message_resp(command: int, sequence: int, status: int) -> bytes:
    """The deliver_sm_resp or data_sm_resp answering a deliver_sm or data_sm."""
    if command == pdu.DATA_SM:
        return pdu.encode_data_sm_resp(sequence, "", status)
    return pdu.encode_deliver_sm_resp(sequence, status)
