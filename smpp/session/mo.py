"""Mobile-originated messages: reassembling concatenated parts (UDH 8/16-bit or SAR TLVs) in any
order, ignoring duplicates, and expiring groups that never complete. Pure: times are passed in.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from smpp.codec import decode, parse_concat

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MoMessage:
    """One whole mobile-originated text, as handed to ``on_mo``.

    ``parts`` is how many SMPP PDUs carried it (1 when not concatenated); ``data_coding`` is the
    first part's. ``source``/``dest`` are the PDU's source_addr/destination_addr as sent.
    ``ref`` is the concatenation reference of a multipart message (None for one part): with
    source, dest and parts it is the reassembly identity a caller can deduplicate on.
    """

    source: str
    dest: str
    text: str
    parts: int
    data_coding: int
    ref: int | None = None


@dataclass
class _Group:
    total: int
    data_coding: int
    started: float
    parts: dict[int, bytes]


class Reassembler:
    """Collects the parts of concatenated MO messages until each group is whole.

    A group is keyed by (source, dest, ref, total); a part number seen twice keeps the first
    copy. A group still incomplete ``timeout`` seconds after its first part is dropped (and
    counted in ``expired``). At most ``max_groups`` groups are held; beyond that the oldest goes.
    """

    def __init__(self, timeout: float, max_groups: int = 10_000) -> None:
        self.timeout = timeout
        self.max_groups = max_groups
        self.expired = 0
        self.duplicates = 0
        self._groups: dict[tuple[str, str, int, int], _Group] = {}
        self._last: tuple[tuple[str, str, int, int], _Group, int] | None = None

    def add(
        self,
        source: str,
        dest: str,
        short_message: bytes,
        esm_class: int,
        data_coding: int,
        tlvs: Mapping[int, bytes],
        now: float,
    ) -> MoMessage | None:
        """Take one incoming part; return the whole message when this part completes it."""
        self._last = None
        info, payload = parse_concat(short_message, esm_class, tlvs)
        if info is None or info.total == 1:
            return MoMessage(source, dest, decode(payload, data_coding), 1, data_coding)
        key = (source, dest, info.ref, info.total)
        group = self._groups.get(key)
        if group is None:
            self._make_room()
            group = self._groups[key] = _Group(info.total, data_coding, now, {})
        if info.seq in group.parts:
            self.duplicates += 1
            return None
        group.parts[info.seq] = payload
        if len(group.parts) < group.total:
            return None
        del self._groups[key]
        self._last = (key, group, info.seq)
        data = b"".join(group.parts[seq] for seq in range(1, group.total + 1))
        return MoMessage(
            source, dest, decode(data, group.data_coding), group.total, group.data_coding, info.ref
        )

    def undo_last(self) -> None:
        """Put back the group the last ``add`` completed, without its final part, because the
        caller could not take the message: the SMSC will resend that part and complete it."""
        if self._last is not None:
            key, group, seq = self._last
            del group.parts[seq]
            self._groups[key] = group
            self._last = None

    def expire(self, now: float) -> int:
        """Drop groups older than the timeout; returns how many went."""
        stale = [key for key, group in self._groups.items() if now - group.started >= self.timeout]
        for key in stale:
            group = self._groups.pop(key)
            log.warning(
                "MO from %s: dropped incomplete message ref %d (%d of %d parts after %.0fs)",
                key[0],
                key[2],
                len(group.parts),
                group.total,
                self.timeout,
            )
        self.expired += len(stale)
        return len(stale)

    def next_expiry(self) -> float | None:
        """When the oldest pending group expires (None when nothing is pending)."""
        if not self._groups:
            return None
        return min(group.started for group in self._groups.values()) + self.timeout

    @property
    def pending(self) -> int:
        return len(self._groups)

    def _make_room(self) -> None:
        while len(self._groups) >= self.max_groups:
            oldest = min(self._groups, key=lambda key: self._groups[key].started)
            del self._groups[oldest]
            self.expired += 1
