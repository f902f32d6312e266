"""What the worker holds for each message between claim and settlement.

A :class:`Job` is one message: its stream entries (usually one; more when the accept path's
sweeper enqueued it again), the connection it goes to, and one :class:`Part` per submit_sm.
The :class:`Tracker` is the registry of held jobs, keyed by message id: the reader adds to it,
the settlement writer's ``on_settled`` callback removes from it and acks the entries. It also
counts the *unrecorded* jobs: claimed for sending (a lane reserved them) and not yet settled in
the database. Those are the messages a crash could send twice; lanes claim new work only while
the count is under the worker's ``max_unrecorded`` bound.
"""

from __future__ import annotations

import functools
import threading
import zlib
from dataclasses import dataclass, field

from bridge.config import Connection
from bridge.redis.outbox import OutboundMessage
from bridge.storage.states import MessageState
from smpp.codec import build_submit_parts
from smpp.codec.smpp_time import absolute_time
from smpp.session.submit import SubmitRequest


@dataclass(slots=True)
class Part:
    """One submit_sm of a message. ``tries`` counts submits handed to a session."""

    index: int  # 0-based part number
    request: SubmitRequest
    tries: int = 0
    smsc_id: str | None = None  # set when the SMSC accepted this part


@dataclass(slots=True, eq=False)
class Job:
    """One message in the worker, from claim to settlement."""

    message: OutboundMessage
    entry_ids: list[str]
    possible_duplicate: bool = False  # it may already be at the SMSC (recovered or timed out)
    connection: Connection | None = None
    parts: list[Part] = field(default_factory=list)
    open: int = 0  # parts without a final answer yet
    failure: tuple[MessageState, str] | None = None  # (state, error_code) once failed for good
    done: bool = False  # the outcome has been handed to the settlement writer
    written: bool = False  # some part's bytes may have reached an SMSC socket
    recovered: bool = False  # from a dead consumer or a reconciler's entry: claim any attempts
    claimed: bool = False  # its claim (attempts + 1, the write-ahead mark) is committed
    counted: bool = False  # holds one of the Tracker's unrecorded slots

    @property
    def message_id(self) -> str:
        return self.message.message_id

    @property
    def any_accepted(self) -> bool:
        return any(p.smsc_id is not None for p in self.parts)

    def build(self, connection: Connection) -> None:
        """(Re)build the parts for ``connection`` (its concatenation and source TON/NPI).
        Raises ValueError when the text cannot be split (e.g. more than 255 parts)."""
        m = self.message
        source, ton, npi = connection.source_address(m.sender_id)
        dest = m.destination.removeprefix("+")
        pieces = _single_part(m.text, connection.long_message) or build_submit_parts(
            m.text, method=connection.long_message, ref=concat_ref(m.message_id)
        )
        # the queue's end is the SMSC's too: the absolute moment is written once for every
        # part; the relative form is the time left, so the session writes it as it encodes
        relative = connection.validity_form == "relative"
        validity = "" if relative else absolute_time(m.expires_at)
        until = m.expires_at if relative else None
        self.connection = connection
        self.parts = [
            Part(
                i,
                SubmitRequest(
                    source,
                    dest,
                    p.short_message,
                    esm_class=p.esm_class,
                    data_coding=p.data_coding,
                    tlvs=p.tlvs,
                    registered_delivery=1,
                    source_ton=ton,
                    source_npi=npi,
                    validity_period=validity,
                    validity_until=until,
                    relative_validity=relative,
                    tag=(self, i),
                ),
            )
            for i, p in enumerate(pieces)
        ]
        self.open = len(self.parts)


@functools.lru_cache(maxsize=256)
def _single_part(text: str, method: str) -> list | None:
    """The one part of a text that fits one SMS (no reference in it, so it is the same for
    every recipient of a bulk send); None when the text needs several parts."""
    pieces = build_submit_parts(text, method=method, ref=0)
    return pieces if len(pieces) == 1 else None


def concat_ref(message_id: str) -> int:
    """The concatenation reference of a message: stable across retries and workers, so a part
    resent later still joins its siblings at the handset."""
    return zlib.crc32(message_id.encode()) & 0xFFFF


class Tracker:
    """Held jobs by message id, plus a count for back-pressure. Thread-safe."""

    def __init__(self, max_unrecorded: int = 1 << 62) -> None:
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._empty = threading.Condition(self._lock)
        self.max_unrecorded = max_unrecorded
        self.unrecorded = 0  # jobs holding a slot: claimed (or being claimed), not settled

    def __len__(self) -> int:
        return len(self._jobs)

    def reserve(self, job: Job) -> bool:
        """Take an unrecorded slot for a job about to be claimed and sent; False when all
        ``max_unrecorded`` are taken (the lane waits for settlements to free some)."""
        with self._lock:
            if job.counted:
                return True
            if self.unrecorded >= self.max_unrecorded:
                return False
            self.unrecorded += 1
            job.counted = True
            return True

    def unreserve(self, job: Job) -> None:
        """Give a slot back (the claim was refused or not made)."""
        with self._lock:
            if job.counted:
                job.counted = False
                self.unrecorded -= 1

    @property
    def full(self) -> bool:
        return self.unrecorded >= self.max_unrecorded

    def get(self, message_id: str) -> Job | None:
        return self._jobs.get(message_id)

    def add(self, job: Job) -> None:
        with self._lock:
            self._jobs[job.message_id] = job

    def attach(self, message_id: str, entry_id: str) -> bool:
        """Another entry for a message we already hold: ack it with the first. False when
        the message is not held here."""
        with self._lock:
            job = self._jobs.get(message_id)
            if job is None:
                return False
            if entry_id not in job.entry_ids:
                job.entry_ids.append(entry_id)
            return True

    def release(self, message_ids) -> list[str]:
        """Forget settled messages; returns their stream entry ids (to XACK + XDEL)."""
        entry_ids: list[str] = []
        with self._lock:
            for mid in message_ids:
                job = self._jobs.pop(mid, None)
                if job is not None:
                    entry_ids.extend(job.entry_ids)
                    if job.counted:
                        job.counted = False
                        self.unrecorded -= 1
            if not self._jobs:
                self._empty.notify_all()
        return entry_ids

    def entry_ids(self) -> list[str]:
        with self._lock:
            return [eid for job in self._jobs.values() for eid in job.entry_ids]

    def jobs(self) -> list[Job]:
        with self._lock:
            return list(self._jobs.values())

    def wait_empty(self, timeout: float) -> bool:
        """Block until nothing is held (True) or ``timeout`` seconds pass (False)."""
        with self._lock:
            return self._empty.wait_for(lambda: not self._jobs, timeout)
