"""The submit window of one bind: requests written and awaiting their submit_sm_resp, keyed by
sequence number, each with its response deadline and where its bytes sit in the output stream.
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass

from smpp.session.submit import SubmitOutcome, SubmitRequest


@dataclass(slots=True)
class Pending:
    """A submit in flight. ``offset`` is the position of its first byte in the connection's
    output stream: when the connection falls, bytes before ``Connection.sent`` may have gone."""

    future: Future[SubmitOutcome]
    request: SubmitRequest
    deadline: float
    offset: int


class Window:
    """Up to ``size`` submits in flight. Every entry gets the same response timeout, so
    insertion order is deadline order and the oldest entry is always the next to expire.
    An entry whose response has been read but not yet acted on is "answered": its slot is
    free, it no longer expires, and pop() or drain() still hand it over."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"window must be at least 1, not {size!r}")
        self.size = size
        self._entries: dict[int, Pending] = {}
        self._answered: dict[int, Pending] = {}

    def __len__(self) -> int:
        return len(self._entries) + len(self._answered)

    @property
    def free(self) -> int:
        return self.size - len(self._entries)

    def add(self, sequence: int, pending: Pending) -> None:
        self._entries[sequence] = pending

    def answered(self, sequence: int) -> bool:
        """Free the slot of the entry ``sequence`` answers (False when unknown or expired);
        pop() still returns the entry."""
        pending = self._entries.pop(sequence, None)
        if pending is None:
            return False
        self._answered[sequence] = pending
        return True

    def pop(self, sequence: int) -> Pending | None:
        """The entry answered by ``sequence``, removed; None when unknown or already expired."""
        pending = self._answered.pop(sequence, None)
        return pending if pending is not None else self._entries.pop(sequence, None)

    def next_deadline(self) -> float | None:
        for pending in self._entries.values():
            return pending.deadline
        return None

    def expired(self, now: float) -> list[Pending]:
        """Remove and return every entry whose deadline has passed."""
        gone = []
        for sequence, pending in self._entries.items():
            if pending.deadline > now:
                break
            gone.append(sequence)
        return [self._entries.pop(sequence) for sequence in gone]

    def drain(self) -> list[Pending]:
        """Remove and return everything (the connection is gone)."""
        entries = [*self._answered.values(), *self._entries.values()]
        self._entries.clear()
        self._answered.clear()
        return entries
