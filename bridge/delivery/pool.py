"""The session pool: per SMSC connection, ``binds`` sessions, each bound only while it holds a
fleet-wide bind lease, each publishing its state for `smpp-bridge status`.

One maintenance thread renews leases every ``lease_ttl / 3`` (a lease that cannot be renewed,
or was lost, stops its session: the fleet cap beats our throughput), tries to take leases for
slots that have none, and publishes every slot's status. Sessions are smpp.session.client.Session
objects; their receipts come back through ``on_receipt(connection_name, receipt)``, or, when
``on_receipts`` is given, ``on_receipts(connection_name, receipts)`` once per read (which must
store them before returning, or raise so the session answers ESME_RX_T_APPN), and their
whole mobile-originated messages through ``on_mo(connection_name, mo)`` (which must store the
message before returning, or raise so the session answers ESME_RX_T_APPN).
"""

from __future__ import annotations

import itertools
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis as redis_lib

from bridge.config import Connection, WorkerSettings
from bridge.delivery.fleet import BindLeases, clear_bind_status, publish_bind_status
from bridge.delivery.holders import holder_label
from bridge.delivery.rates import RateMeter
from smpp.codec.receipt import Receipt
from smpp.session.client import Session, SessionConfig, SessionInfo, SessionState
from smpp.session.mo import MoMessage

log = logging.getLogger(__name__)

_STOP_TIMEOUT = 10.0  # seconds one session may take to unbind when the pool stops


@dataclass
class Slot:
    """One bind of one connection: a session while a lease is held, nothing otherwise."""

    connection: Connection
    index: int  # 1-based
    session: Session | None = None
    lease: str | None = None
    renewed_at: float = 0.0  # monotonic time of the last successful acquire/renew
    note: str = "waiting for a bind lease"
    stopping: list[threading.Thread] = field(default_factory=list)
    rates: RateMeter = field(default_factory=RateMeter)  # submits/receipts/MO per second

    @property
    def bind_id(self) -> str:
        return f"{self.connection.name}#{self.index}"

    @property
    def bound(self) -> bool:
        return self.session is not None and self.session.state is SessionState.BOUND


def session_config(conn: Connection, index: int, settings: WorkerSettings) -> SessionConfig:
    """The Session settings for bind ``index`` of a connection. The fleet TPS cap is the token
    bucket's job; the session's own cap paces this bind at the same rate so a granted batch
    leaves smoothly."""
    return SessionConfig(
        host=conn.host,
        port=conn.port,
        system_id=conn.system_id,
        password=conn.password,
        system_type=conn.system_type,
        bind_mode=conn.bind_mode,
        window=conn.window,
        tps=conn.tps,
        response_timeout=conn.response_timeout,
        enquire_link_interval=conn.enquire_link_interval,
        dest_ton=conn.dest_ton,
        dest_npi=conn.dest_npi,
        concat_method=conn.long_message,
        reconnect_min=settings.reconnect_min,
        reconnect_max=settings.reconnect_max,
        down_queue_timeout=settings.down_queue_timeout,
        max_queued=1_000_000,
        name=f"{conn.name}#{index}",
    )


class SessionPool:
    """Sessions for every connection, leased fleet-wide. Thread-safe reads (is_up, pick)."""

    def __init__(
        self,
        connections: tuple[Connection, ...],
        redis: redis_lib.Redis,
        settings: WorkerSettings,
        on_receipt: Callable[[str, Receipt], None],
        *,
        clock: Callable[[], float] = time.monotonic,
        make_session: Callable[..., Session] = Session,
        on_mo: Callable[[str, MoMessage], None] | None = None,
        on_receipts: Callable[[str, list[Receipt]], None] | None = None,
    ) -> None:
        self.settings = settings
        self._redis = redis
        self._on_receipt = on_receipt
        self._on_receipts = on_receipts
        self._on_mo = on_mo
        self._clock = clock
        self._make_session = make_session
        self._leases = BindLeases(redis, ttl=settings.lease_ttl)
        self._holder = f"{socket.gethostname()}:{os.getpid()}"
        self.slots = [Slot(c, i) for c in connections for i in range(1, c.binds + 1)]
        self._by_name: dict[str, list[Slot]] = {}
        for slot in self.slots:
            self._by_name.setdefault(slot.connection.name, []).append(slot)
        self._rr = itertools.count()
        self._stop = threading.Event()
        self._wake = threading.Event()  # a session changed state: publish soon
        self._thread: threading.Thread | None = None
        self._last_status = self._last_lease = -1e9

    # ------------------------------------------------------------------ life cycle

    def start(self) -> None:
        """Take what leases we can, start those sessions, and the maintenance thread."""
        self._maintain()
        self._thread = threading.Thread(target=self._run, name="worker-pool", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = _STOP_TIMEOUT) -> None:
        """Unbind every session (in parallel), give the leases back, clear the statuses."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        stoppers = [
            threading.Thread(target=self._release, args=(slot, timeout), daemon=True)
            for slot in self.slots
        ]
        for t in stoppers:
            t.start()
        for t in stoppers:
            t.join(timeout + 1)
        for slot in self.slots:
            try:
                clear_bind_status(self._redis, slot.connection.name, slot.bind_id)
            except redis_lib.RedisError as exc:
                log.warning(
                    "could not clear status of %s (it expires by itself): %s", slot.bind_id, exc
                )

    def _run(self) -> None:
        interval = max(0.05, min(self.settings.lease_ttl / 3, self.settings.status_interval))
        while not self._stop.is_set():
            changed = self._wake.wait(interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            self._maintain(publish_now=changed)

    def _maintain(self, publish_now: bool = False) -> None:
        now = self._clock()
        if now - self._last_lease >= self.settings.lease_ttl / 3 - 0.01:
            self._last_lease = now
            for slot in self.slots:
                try:
                    self._keep_lease(slot)
                except redis_lib.RedisError as exc:
                    self._lease_unknown(slot, exc)
        if publish_now or now - self._last_status >= self.settings.status_interval:
            self._last_status = now
            self.publish_status()

    # ------------------------------------------------------------------ leases

    def _keep_lease(self, slot: Slot) -> None:
        account = slot.connection.account
        if slot.lease is not None:
            if self._leases.renew(account, slot.lease):
                slot.renewed_at = self._clock()
                return
            log.warning(
                "%s: bind lease lost; unbinding (the fleet cap of %d binds for %s comes first)",
                slot.bind_id,
                slot.connection.max_binds,
                account,
            )
            self._drop_session(slot, "bind lease lost; will bind again when one is free")
        slot.stopping = [t for t in slot.stopping if t.is_alive()]
        if slot.stopping:
            return  # the old bind is still unbinding: binding again now could exceed the cap
        lease = self._leases.acquire(
            account, slot.connection.max_binds, f"{self._holder}:{slot.bind_id}"
        )
        if lease is None:
            held = sorted({holder_label(h) for h in self._leases.holders(account)})
            slot.note = (
                f"waiting for a bind lease ({slot.connection.max_binds} bind(s) of "
                f"{account} in use fleet-wide{': ' if held else ''}{', '.join(held)})"
            )
            return
        slot.lease, slot.renewed_at, slot.note = lease, self._clock(), ""
        session = self._make_session(
            session_config(slot.connection, slot.index, self.settings),
            self._receipt_callback(slot.connection.name),
            on_mo=self._mo_callback(slot.connection.name),
            on_state=lambda _state: self._wake.set(),
            on_receipts=self._receipts_callback(slot.connection.name),
        )
        session.start()
        slot.session = session
        log.info(
            "%s: lease taken, binding to %s:%d",
            slot.bind_id,
            slot.connection.host,
            slot.connection.port,
        )

    def _lease_unknown(self, slot: Slot, exc: Exception) -> None:
        """Redis is unreachable: keep the bind while the lease surely still lives, else stop."""
        if (
            slot.lease is not None
            and self._clock() - slot.renewed_at > self.settings.lease_ttl * 0.8
        ):
            log.warning(
                "%s: cannot renew the bind lease (%s); unbinding before it expires",
                slot.bind_id,
                exc,
            )
            self._drop_session(slot, f"Redis unreachable ({exc}); lease could not be renewed")
        elif slot.lease is None:
            slot.note = f"waiting for Redis to take a bind lease ({exc})"

    def _drop_session(self, slot: Slot, note: str) -> None:
        session, slot.session, slot.lease, slot.note = slot.session, None, None, note
        if session is not None:
            t = threading.Thread(
                target=session.stop, args=(_STOP_TIMEOUT,), daemon=True, name=f"stop-{slot.bind_id}"
            )
            t.start()
            slot.stopping = [s for s in slot.stopping if s.is_alive()] + [t]

    def _release(self, slot: Slot, timeout: float) -> None:
        session, lease = slot.session, slot.lease
        if session is not None:
            session.stop(timeout)
        for t in slot.stopping:
            t.join(timeout)
        if lease is not None:
            try:
                self._leases.release(slot.connection.account, lease)
            except redis_lib.RedisError as exc:
                log.warning(
                    "%s: could not release the bind lease (it expires in %ss): %s",
                    slot.bind_id,
                    self.settings.lease_ttl,
                    exc,
                )
        slot.session = slot.lease = None

    def _receipt_callback(self, name: str) -> Callable[[Receipt, SessionInfo], None]:
        on_receipt = self._on_receipt

        def callback(receipt: Receipt, _info: SessionInfo) -> None:
            on_receipt(name, receipt)

        return callback

    def _receipts_callback(self, name: str) -> Callable[[list[Receipt], SessionInfo], None] | None:
        on_receipts = self._on_receipts
        if on_receipts is None:
            return None

        def callback(receipts: list[Receipt], _info: SessionInfo) -> None:
            on_receipts(name, receipts)

        return callback

    def _mo_callback(self, name: str) -> Callable[[MoMessage], None] | None:
        on_mo = self._on_mo
        if on_mo is None:
            return None

        def callback(mo: MoMessage) -> None:
            on_mo(name, mo)

        return callback

    # ------------------------------------------------------------------ for dispatch

    def is_up(self, name: str) -> bool:
        """True when some bind of that connection is bound now (routing's failover test)."""
        return any(slot.bound for slot in self._by_name.get(name, ()))

    def bound_sessions(self, name: str) -> list[Session]:
        slots = self._by_name.get(name, ())
        return [s for slot in slots if slot.bound and (s := slot.session) is not None]

    def any_up(self) -> bool:
        """True when this worker has a bound session at all (else it should not read work)."""
        return any(slot.bound for slot in self.slots)

    def pick(self, name: str) -> Session | None:
        """A bound session of that connection for the next message, in turn; None if none."""
        live = [s.session for s in self._by_name.get(name, ()) if s.bound]
        if not live:
            return None
        return live[next(self._rr) % len(live)]

    def capacity(self, name: str) -> int:
        """Submits worth keeping queued for that connection: twice its bound windows."""
        slots = self._by_name.get(name, ())
        bound = sum(1 for s in slots if s.bound)
        return max(1, bound) * (slots[0].connection.window if slots else 1) * 2

    # ------------------------------------------------------------------ status

    def publish_status(self) -> None:
        """One heartbeat per slot (expires after three missed ones)."""
        ttl = self.settings.status_interval * 3
        for slot in self.slots:
            try:
                publish_bind_status(
                    self._redis, slot.connection.name, slot.bind_id, self.slot_status(slot), ttl=ttl
                )
            except redis_lib.RedisError as exc:
                log.debug("status not published for %s: %s", slot.bind_id, exc)
                return

    def slot_status(self, slot: Slot) -> dict[str, Any]:
        """The heartbeat of one slot: what the NOC sees of this bind (docs/operations.md)."""
        c = slot.connection
        record: dict[str, Any] = {
            "system_id": c.system_id,
            "smsc": f"{c.host}:{c.port}",
            "account": c.account,
            "bind_mode": c.bind_mode,
            "lease": slot.lease,
        }
        if slot.session is None:
            slot.rates.reset()
            return {
                **record,
                "state": "no_lease" if slot.lease is None else "starting",
                "since": None,
                "down_since": None,
                "in_flight": 0,
                "queued": 0,
                "window": {"in_use": 0, "size": c.window},
                "rates": {"submits": 0.0, "receipts": 0.0, "mo": 0.0},
                "counters": {},
                "last_error": slot.note or None,
                "last_error_at": None,
                "enquire_link": {"rtt_ms": None, "at": None},
            }
        snap = slot.session.snapshot()
        counters = {k: v for k, v in vars(snap.counters).items() if k != "errors"}
        counters["errors"] = {f"0x{code:08X}": n for code, n in snap.counters.errors.items()}
        rates = slot.rates.update(
            self._clock(),
            {
                "submits": snap.counters.submitted,
                "receipts": snap.counters.receipts,
                "mo": snap.counters.mo,
            },
        )
        rtt = snap.enquire_link_rtt
        return {
            **record,
            "state": snap.state.value,
            "since": snap.since_wall,
            "down_since": snap.down_since,
            "in_flight": snap.in_flight,
            "queued": snap.queued,
            "window": {"in_use": snap.in_flight, "size": c.window},
            "rates": rates,
            "counters": counters,
            "last_error": snap.last_error,
            "last_error_at": snap.last_error_at,
            "enquire_link": {
                "rtt_ms": None if rtt is None else round(rtt * 1000, 2),
                "at": snap.enquire_link_at,
            },
        }
