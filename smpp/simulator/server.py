"""The simulated SMSC as an object tests, benchmarks and `smpp-bridge simulator` hold: a real
TCP server on one background thread running its own asyncio loop.

Every accessor and control call runs on that thread (handed over with call_soon_threadsafe and
waited for), so records are consistent and the hot path takes no locks.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Self, TypeVar

from smpp.simulator.config import SimulatorConfig
from smpp.simulator.connection import BIND_TYPES, Connection
from smpp.simulator.dlr import ReceiptDates
from smpp.simulator.recording import (
    BindRecord,
    MoRecord,
    ReceiptRecord,
    SubmittedMessage,
    pdu_dict,
)
from smpp.simulator.scenarios import Scenario, build_scenarios
from smpp.simulator.selector import new_event_loop
from smpp.simulator.smsc import Smsc

T = TypeVar("T")
CALL_TIMEOUT = 10.0  # seconds an accessor waits for the server thread


class SimulatorError(RuntimeError):
    """The simulator could not start, or was used while stopped; the message says what to do."""


class Simulator:
    """A simulated SMSC. ``start()`` returns (host, port); ``stop()`` closes every connection
    and joins the thread. Also a context manager. Settings: :class:`SimulatorConfig`, or its
    fields as keyword arguments. ``clock`` gives the wall time written in receipts."""

    def __init__(
        self,
        config: SimulatorConfig | None = None,
        *,
        clock: Callable[[], float] = time.time,
        **fields: Any,
    ) -> None:
        config = config or SimulatorConfig()
        self.config = config.replace(**fields) if fields else config
        build_scenarios(self.config.scenarios)  # fail here, not on the server thread
        self._clock = clock
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._smsc: Smsc | None = None
        self._server: asyncio.base_events.Server | None = None
        self.address: tuple[str, int] | None = None
        self._errors: list[str] = []

    # ------------------------------------------------------------------ life cycle

    def start(self) -> tuple[str, int]:
        if self._thread is not None:
            raise SimulatorError("simulator already started; stop() it first")
        started: concurrent.futures.Future[tuple[str, int]] = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=self._run, args=(started,), name="smpp-simulator", daemon=True
        )
        self._thread.start()
        try:
            self.address = started.result(timeout=CALL_TIMEOUT)
        except BaseException:
            self._thread.join(self.config.stop_timeout)
            self._thread = None
            raise
        return self.address

    def stop(self) -> None:
        """Close the listener and every connection, stop the loop and join the thread (bounded
        by ``config.stop_timeout``). Records stay readable. Idempotent."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        if not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._shutdown)
            except RuntimeError:  # the loop closed between the check and the call
                pass
        thread.join(self.config.stop_timeout)
        if thread.is_alive():
            raise SimulatorError(
                f"simulator thread did not stop within {self.config.stop_timeout}s"
            )
        self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def host(self) -> str:
        return self._require_address()[0]

    @property
    def port(self) -> int:
        return self._require_address()[1]

    def _require_address(self) -> tuple[str, int]:
        if self.address is None:
            raise SimulatorError("simulator not started: call start() first")
        return self.address

    def _run(self, started: concurrent.futures.Future[tuple[str, int]]) -> None:
        loop = new_event_loop()  # timers to the microsecond: see smpp.simulator.selector
        loop.set_exception_handler(self._on_error)
        self._loop = loop
        try:
            smsc = self._smsc = Smsc(self.config, loop, ReceiptDates(self._clock))
            self._server = loop.run_until_complete(
                loop.create_server(
                    lambda: Connection(smsc),
                    self.config.host,
                    self.config.port,
                    reuse_address=True,
                    backlog=512,
                )
            )
            host, port = self._server.sockets[0].getsockname()[:2]
        except BaseException as exc:  # noqa: BLE001 -- hand the failure (e.g. port in use) to start()
            started.set_exception(
                SimulatorError(
                    f"simulator could not listen on {self.config.host}:{self.config.port}: {exc}"
                )
            )
            loop.close()
            return
        started.set_result((host, port))
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(asyncio.sleep(0))  # let connection_lost callbacks run
            loop.close()

    def _on_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """A bug in the simulator (an exception escaped a handler): kept for ``errors``, and
        logged the way asyncio would."""
        exc = context.get("exception")
        self._errors.append(
            f"{context.get('message')}: {exc!r}" if exc else str(context.get("message"))
        )
        loop.default_exception_handler(context)

    @property
    def errors(self) -> list[str]:
        """Exceptions that escaped the simulator's handlers (the fixtures fail a test on any)."""
        return list(self._errors)

    def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        if self._smsc is not None:
            self._smsc.close()
        if self._loop is not None:
            self._loop.call_soon(self._loop.stop)

    # ------------------------------------------------------------------ on the server thread

    def _call(self, fn: Callable[[Smsc], T]) -> T:
        """Run ``fn(smsc)`` on the server thread and return its result."""
        smsc, loop, thread = self._smsc, self._loop, self._thread
        if smsc is None:
            raise SimulatorError("simulator not started: call start() first")
        if (
            thread is None
            or not thread.is_alive()
            or loop is None
            or loop.is_closed()
            or threading.current_thread() is thread
        ):
            return fn(smsc)  # stopped (nothing changes any more) or already on that thread
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(fn(smsc))
            except BaseException as exc:  # noqa: BLE001 -- re-raised in the caller
                future.set_exception(exc)

        loop.call_soon_threadsafe(run)
        return future.result(timeout=CALL_TIMEOUT)

    # ------------------------------------------------------------------ control

    def set_scenarios(self, *scenarios: Scenario | str) -> None:
        """Replace the active scenarios (objects or specs like "throttle:tps=10"); none given:
        back to the happy SMSC. Takes effect for the next PDU."""
        built = build_scenarios(scenarios)
        self._call(lambda smsc: smsc.set_scenarios(built))

    @property
    def scenarios(self) -> list[Scenario]:
        return self._call(lambda smsc: list(smsc.scenarios))

    def reconfigure(self, **changes: Any) -> SimulatorConfig:
        """Change settings while running (dlr_delay, outcomes, id formats, credentials, cap,
        seed...); host, port and scenarios are not changed this way."""
        for name in ("host", "port", "scenarios"):
            if name in changes:
                raise SimulatorError(
                    f"{name} cannot change while running; use "
                    + ("set_scenarios()" if name == "scenarios" else "a new Simulator")
                )
        new = self.config.replace(**changes)
        self._call(lambda smsc: smsc.configure(new))
        self.config = new
        return new

    def send_mo(
        self,
        source: str,
        dest: str,
        text: str,
        parts_method: str | None = None,
        system_id: str | None = None,
        data_coding: int | None = None,
        order: Sequence[int] | None = None,
    ) -> MoRecord:
        """Send a mobile-originated message (as deliver_sm, concatenated with "udh", "udh16",
        "sar" or "payload" when it needs more than one part) to one bound receiver or
        transceiver of ``system_id`` (any when None). ``order`` lists the 0-based parts to send
        in that order, repeats allowed (out-of-order and duplicated parts). Raises
        SimulatorError if none is bound."""
        record = self._call(
            lambda smsc: smsc.send_mo(
                source, dest, text, parts_method, system_id, data_coding, order
            )
        )
        if record is None:
            raise SimulatorError(
                "no receiver or transceiver bound"
                + (f" for system_id {system_id!r}" if system_id else "")
                + ": bind one before sending MO"
            )
        return record

    def resend_mo(self, index: int = -1, system_id: str | None = None) -> list[int]:
        """Redeliver the parts of the ``index``-th MO (default: the last) that were not
        answered ESME_ROK, as an SMSC retries after ESME_RX_T_APPN; their new sequences."""
        return self._call(lambda smsc: smsc.resend_mo(index, system_id))

    def resend_receipts(self) -> int:
        """Redeliver every receipt last answered with an error status (ESME_RX_T_APPN...), as
        an SMSC retries; how many. Each record's ``statuses`` lists every answer."""
        return self._call(lambda smsc: smsc.resend_receipts())

    def unbind(self, system_id: str | None = None, bind_type: str | None = None) -> int:
        """Send unbind to every bound connection (of ``system_id``, and of ``bind_type``:
        "transmitter", "receiver" or "transceiver"); returns how many. Each record's
        ``unbind_answered`` then says whether the ESME answered with unbind_resp."""
        if bind_type not in (None, *BIND_TYPES.values()):
            raise SimulatorError(
                f"bind_type {bind_type!r}: use one of {sorted(BIND_TYPES.values())} or None"
            )
        return self._call(lambda smsc: smsc.unbind_all(system_id, bind_type))

    def drop_connections(self) -> int:
        """Reset every open connection (as a crashing SMSC would); returns how many."""

        def drop(smsc: Smsc) -> int:
            conns = list(smsc.connections)
            for conn in conns:
                conn.drop(abort=True)
            return len(conns)

        return self._call(drop)

    # ------------------------------------------------------------------ records

    @property
    def binds(self) -> list[BindRecord]:
        """Every connection so far (bound or not), oldest first, with its received PDUs."""
        return self._call(lambda smsc: smsc.recorder.snapshot_binds())

    @property
    def bound(self) -> list[BindRecord]:
        """The connections bound right now."""
        return [b for b in self.binds if b.bound]

    def pdus(
        self, command: str | None = None, system_id: str | None = None
    ) -> list[dict[str, Any]]:
        """PDUs received on every bind (of ``system_id``), optionally one command's, in order
        per bind: dicts with command, command_id, status, sequence, body, answer."""

        def collect(smsc: Smsc) -> list[dict[str, Any]]:
            found = [
                pdu_dict(e)
                for b in smsc.recorder.binds
                if system_id is None or b.system_id == system_id
                for e in b.pdus
            ]
            return [p for p in found if command is None or p["command"] == command]

        return self._call(collect)

    @property
    def messages(self) -> list[SubmittedMessage]:
        """Accepted messages, whole (concatenated parts reassembled), oldest first."""
        return self._call(lambda smsc: list(smsc.recorder.messages))

    @property
    def incomplete_messages(self) -> list[SubmittedMessage]:
        return self._call(lambda smsc: smsc.recorder.snapshot_incomplete())

    @property
    def receipts(self) -> list[ReceiptRecord]:
        """Delivery receipts sent, with the ESME's deliver_sm_resp status when it came."""
        return self._call(lambda smsc: smsc.recorder.snapshot_receipts())

    @property
    def unanswered_receipts(self) -> list[ReceiptRecord]:
        return [r for r in self.receipts if r.response_status is None]

    @property
    def pending_receipts(self) -> int:
        """Receipts held because no receiver of their system_id is bound."""
        return self._call(lambda smsc: sum(len(q) for q in smsc.pending.values()))

    @property
    def mo(self) -> list[MoRecord]:
        return self._call(lambda smsc: smsc.recorder.snapshot_mo())

    @property
    def counters(self) -> dict[str, int]:
        """connections, accepted, receipts_sent, receipts_dropped, mo_sent, mo_skipped,
        groups_dropped: totals never cut by record_limit."""
        return self._call(lambda smsc: dict(smsc.recorder.counters))

    def clear_records(self) -> None:
        self._call(lambda smsc: smsc.recorder.clear())
