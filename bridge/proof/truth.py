"""A scenario's result against ground truth: the simulated SMSC's own record of what it
accepted (a destination accepted twice is a real duplicate) compared with our rows, the
possible-duplicate flags and counter, the outbound stream and `smpp-bridge audit`'s checks."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select

from bridge.delivery.audit import audit
from bridge.delivery.reader import stream_info
from bridge.proof.rig import Rig
from bridge.redis import keys as redis_keys
from bridge.storage.models import ledger

SETTLE_TIMEOUT = 15.0  # seconds for the stream to drain and counters to catch up at the end


@dataclass
class Outcome:
    """One row of the summary table; ``problems`` empty means every check passed."""

    scenario: str
    messages: int
    delivered: int
    refunded: int
    real_duplicates: int
    flagged_duplicates: int
    audit: str
    seconds: float
    states: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def wire_counts(rig: Rig) -> Counter[str]:
    """How many times the SMSC accepted a message for each destination (E.164)."""
    return Counter("+" + m.destination_addr for m in rig.sim.messages)


def _settled(rig: Rig) -> bool:
    """The stream is drained and acknowledged and the duplicate counter matches the flags."""
    info = stream_info(rig.redis)
    flagged = sum(1 for r in rig.rows() if r["possible_duplicate"])
    reported = int(rig.redis.get(redis_keys.POSSIBLE_DUPLICATES) or 0)
    return (info.length, info.pending) == (0, 0) and reported == flagged


def measure(
    rig: Rig,
    name: str,
    count: int,
    expected: dict[str, int] | None,
    started: float,
    problems: list[str],
) -> Outcome:
    """Check the run against ground truth; every failed check is one line in ``problems``."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while not _settled(rig) and time.monotonic() < deadline:
        time.sleep(0.2)
    rows = rig.rows()
    states = Counter(r["state"] for r in rows)
    wire = wire_counts(rig)
    twice = {r["id"] for r in rows if wire[r["destination"]] > 1}
    flagged = {r["id"] for r in rows if r["possible_duplicate"]}
    problems = [*problems, *_check_rows(rig, rows, count, wire, twice, flagged)]
    if expected is not None and dict(states) != expected:
        problems.append(f"final states {dict(states)}, expected {expected}")
    report = _audit(rig)
    problems += report.problems
    with rig.db.connect() as conn:  # type: ignore[union-attr]
        refunds = conn.execute(
            select(func.count()).select_from(ledger).where(ledger.c.kind == "refund")
        ).scalar_one()
    return Outcome(
        scenario=name,
        messages=len(rows),
        delivered=states.get("delivered", 0),
        refunded=int(refunds),
        real_duplicates=len(twice),
        flagged_duplicates=len(flagged),
        audit="ok" if report.ok else f"{len(report.problems)} problem(s)",
        seconds=round(time.monotonic() - started, 1),
        states=dict(states),
        problems=problems,
    )


def _check_rows(
    rig: Rig, rows: list[Any], count: int, wire: Counter[str], twice: set[str], flagged: set[str]
) -> list[str]:
    problems = []
    if len(rows) != count:
        problems.append(f"{len(rows)} messages stored, {count} accepted")
    reached = [r for r in rows if r["state"] in ("submitted", "delivered", "undelivered")]
    missing = sum(1 for r in reached if wire[r["destination"]] == 0)
    if missing:
        problems.append(f"{missing} messages marked sent never reached the SMSC")
    if twice - flagged:
        problems.append(f"{len(twice - flagged)} duplicates on the wire were not flagged")
    reported = int(rig.redis.get(redis_keys.POSSIBLE_DUPLICATES) or 0)
    if reported != len(flagged):
        problems.append(f"reported {reported} possible duplicates, {len(flagged)} rows flagged")
    info = stream_info(rig.redis)
    if (info.length, info.pending) != (0, 0):
        problems.append(
            f"outbound stream not drained: {info.length} entries, {info.pending} pending"
        )
    return problems


def _audit(rig: Rig) -> Any:
    """`smpp-bridge audit`'s checks (books, states, the outbound stream), in this process."""
    with rig.db.connect() as conn:  # type: ignore[union-attr]
        return audit(conn, datetime.now(UTC), redis=rig.redis, stream_grace_seconds=0.0)
