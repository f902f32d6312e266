"""Who holds a bind lease, written so that a process on the same machine can prove the holder
dead and take its lease at once instead of waiting for the lease to expire.

A lease id is ``<label>/<random>`` (label e.g. ``vm1:4242:sim#1``), and when the holder could
read its own identity from /proc it ends in ``~h1~<hostname>~<boot_id>~<pid ns>~<pid>~<start>``:
the host identity (hostname, ``/proc/sys/kernel/random/boot_id`` and the inode of
``/proc/self/ns/pid``) and the holder process (its pid and its start time, field 22 of
``/proc/<pid>/stat``, so a pid the kernel reused for another process is not the holder).

A holder is dead only when its host identity is ours and no process has its pid, or the one
that has it started at another time, or is a zombie. Anything else (another machine, another
container, a lease id of the old form, /proc unreadable, another user's process hidden by
``hidepid``) is not provably dead: such a lease keeps the TTL rule.
"""

from __future__ import annotations

import functools
import os
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
_TAG = "h1"  # the version of the identity suffix
_SEP = "~"
_FIELDS = 6  # tag, hostname, boot_id, pid ns, pid, start time
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_GONE_STATES = frozenset("ZXx")  # zombie, dead: it holds no socket and renews nothing


@dataclass(frozen=True)
class HostIdentity:
    """What makes two processes' pids comparable: the same machine, boot and pid namespace."""

    hostname: str
    boot_id: str  # /proc/sys/kernel/random/boot_id, new at every boot
    pid_ns: int  # inode of /proc/self/ns/pid: containers have their own


@dataclass(frozen=True)
class Holder:
    """One process that holds leases: its host identity, pid and start time (clock ticks
    after boot, field 22 of /proc/<pid>/stat)."""

    host: HostIdentity
    pid: int
    start_time: int

    def suffix(self) -> str:
        """The text that ends this holder's lease ids."""
        h = self.host
        return _SEP + _SEP.join(
            (_TAG, h.hostname, h.boot_id, str(h.pid_ns), str(self.pid), str(self.start_time))
        )


def parse_holder(lease: str) -> Holder | None:
    """The holder a lease id names, or None for an id without a (valid) identity suffix: an
    old-form id, or one another version wrote (such a holder is treated as foreign)."""
    parts = lease.rsplit(_SEP, _FIELDS)
    if len(parts) != _FIELDS + 1:
        return None
    tag, hostname, boot_id, pid_ns, pid, start = parts[1:]
    numbers = (pid_ns, pid, start)
    if tag != _TAG or not _UUID.match(boot_id) or not all(n.isdigit() for n in numbers):
        return None
    if int(pid) < 1:
        return None
    return Holder(HostIdentity(hostname, boot_id, int(pid_ns)), int(pid), int(start))


def holder_label(lease: str) -> str:
    """The human part of a lease id (``vm1:4242:sim#1``), for logs and ``smpp-bridge status``."""
    body = lease.rsplit(_SEP, _FIELDS)[0] if parse_holder(lease) else lease
    label, slash, _random = body.rpartition("/")
    return label if slash else body


def parse_stat(text: str) -> tuple[str, int]:
    """(state, start time) from the text of /proc/<pid>/stat. The command name (field 2) is in
    parentheses and may hold spaces and parentheses itself, so fields are counted after the
    last ')'."""
    _head, paren, rest = text.rpartition(")")
    fields = rest.split()
    if not paren or len(fields) < 20:
        raise ValueError(f"not a /proc/<pid>/stat line: {text[:80]!r}")
    return fields[0], int(fields[19])  # fields 3 and 22


def process_start_time(pid: int, proc: Path = PROC) -> int | None:
    """The start time of process ``pid`` of our pid namespace, or None when no process has
    that pid or it is a zombie. Raises OSError when it exists but cannot be read (another
    user's process under ``hidepid``): then nothing can be proven."""
    if pid < 1:
        raise ValueError(f"pid must be positive, got {pid!r}")
    foreign = False
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the pid exists
    except ProcessLookupError:
        return None
    except PermissionError:
        foreign = True  # exists, another user's
    try:
        text = (proc / str(pid) / "stat").read_text()
    except FileNotFoundError:
        if foreign:
            raise PermissionError(f"process {pid} exists but {proc} hides it") from None
        return None  # it exited meanwhile
    state, start = parse_stat(text)
    return None if state in _GONE_STATES else start


def read_host_identity(proc: Path = PROC) -> HostIdentity | None:
    """This process's host identity, or None when /proc cannot tell it (not Linux, not
    mounted, or mounted for another pid namespace than ours)."""
    try:
        if os.readlink(proc / "self") != str(os.getpid()):
            return None  # this /proc shows another pid namespace: its pids are not ours
        boot_id = (proc / "sys/kernel/random/boot_id").read_text().strip()
        pid_ns = os.stat(proc / "self/ns/pid").st_ino
    except OSError:
        return None
    if not _UUID.match(boot_id):
        return None
    return HostIdentity(socket.gethostname(), boot_id, pid_ns)


@functools.cache
def _host_identity() -> HostIdentity | None:
    return read_host_identity()


def current_holder() -> Holder | None:
    """This process as a lease holder, or None when /proc cannot tell (old-form lease ids,
    the TTL rule for them). The host identity is read once per process."""
    host = _host_identity()
    if host is None:
        return None
    pid = os.getpid()  # not cached: a forked child is another holder
    try:
        start = process_start_time(pid)
    except (OSError, ValueError):
        return None
    return None if start is None else Holder(host, pid, start)


def holder_is_dead(
    holder: Holder,
    here: HostIdentity | None,
    start_time_of: Callable[[int], int | None] = process_start_time,
) -> bool:
    """True only when ``holder`` provably no longer runs: it shares our host identity and its
    pid is gone, or belongs to a process that started at another time (a reused pid)."""
    if here is None or holder.host != here:
        return False
    try:
        now = start_time_of(holder.pid)
    except (OSError, ValueError):
        return False
    return now is None or now != holder.start_time
