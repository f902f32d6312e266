"""`make bench`: run every benchmark script with quick settings and rewrite its table in
docs/benchmarks.md.

Each script's output replaces the marked block ``<!-- bench:NAME -->`` ... ``<!-- /bench:NAME -->``
of its section, stamped with the command, the date, ``nproc`` and the commit; prose and historical
figures outside the blocks are never touched. A block that is missing is added at the end of its
section. Every script in bench/ must have an entry in BENCHES (or be listed in HELPERS): one that
has none is named and makes the run exit 1 (the others still run), so a new benchmark cannot be
left out silently. Each script runs under a timeout, so the whole run is
bounded; one that fails or times out keeps its old block and makes the run exit 1.

    .venv/bin/python -m bench.publish [--only NAME ...] [--long] [--dry-run] [--doc PATH]

``--long`` runs each script with its own defaults instead (the figures the prose quotes; tens of
minutes in all), ``--dry-run`` prints the blocks instead of writing the doc.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
HELPERS = {
    "__init__",
    "publish",
    "webhook_sink",
    "e2e_sink",
}  # modules of bench/ that are not benchmarks


@dataclass(frozen=True)
class Bench:
    name: str  # the block id: <!-- bench:NAME -->
    module: str  # bench.<module>
    section: str  # the doc's "## " heading (its start) the block belongs to
    quick: tuple[str, ...]  # arguments of the quick run make bench does
    timeout: float = 300.0  # seconds before the quick run is stopped


BENCHES = (
    Bench("codec", "bench_codec", "## Codec", ("--repeat", "3")),
    Bench("routing", "routing", "## Routing and fleet", ("--runs", "3", "--numbers", "500")),
    Bench(
        "simulator",
        "simulator",
        "## Simulated SMSC",
        ("--messages", "20000", "--runs", "1"),
    ),
    Bench("send-path", "send_path", "## Send path", ("--seconds", "2", "--runs", "1")),
    Bench(
        "group-commit", "group_commit", "## SQLite synchronous", ("--seconds", "1", "--runs", "1")
    ),
    Bench("settlement", "settlement", "## Settlement", ("--messages", "5000", "--runs", "1")),
    Bench(
        "accept",
        "accept",
        "## Accept path",
        ("--seconds", "3", "--warmup", "1", "--runs", "1"),
    ),
    Bench(
        "smpp",
        "smpp",
        "## SMPP session",
        ("--runs", "1", "--seconds", "1", "--windows", "1,50", "--latencies", "0,5"),
    ),
    Bench(
        "e2e",
        "e2e",
        "## End to end",
        ("--bulk-messages", "5000", "--single-messages", "1000", "--runs", "1"),
    ),
    Bench("login-attack", "login_attack", "## Password guessing", ("--seconds", "3")),
    Bench("webhooks", "webhooks", "## Webhook sender", ("--events", "3000", "--runs", "1")),
    Bench(
        "listing",
        "listing",
        "## Listing and search",
        ("--messages", "50000", "--others", "10000", "--requests", "50", "--no-postgres"),
    ),
    Bench(
        "scheduling",
        "scheduling",
        "## Scheduled release",
        ("--messages", "5000", "--groups", "10", "--window", "5", "--lead", "15"),
    ),
    Bench(
        "plain",
        "plain",
        "## Plain clients",
        ("--connections", "8", "--requests", "1000", "--warmup", "100", "--loadgen", "both"),
    ),
    Bench(
        "floor",
        "floor",
        "## HTTP floor",
        ("--requests", "2000", "--runs", "1", "--shapes", "2x8:balanced,2x8:gthread"),
    ),
)


def unregistered(bench_dir: Path = ROOT / "bench") -> list[str]:
    """Scripts in bench/ that are neither a registered benchmark nor a known helper."""
    scripts = {p.stem for p in bench_dir.glob("*.py")} - HELPERS
    return sorted(scripts - {b.module for b in BENCHES})


def render(output: str) -> str:
    """A script's stdout as Markdown: its Markdown tables (a ``|`` line, then a ``|---``
    line) as they are, every other line in text fences."""
    parts: list[str] = []
    text: list[str] = []
    table: list[str] = []

    def flush_text() -> None:
        while text and not text[-1].strip():
            text.pop()
        if text:
            parts.append("```text\n" + "\n".join(text) + "\n```")
        text.clear()

    lines = output.splitlines()
    for i, line in enumerate(lines):
        starts = line.startswith("|") and i + 1 < len(lines) and lines[i + 1].startswith("|--")
        if line.startswith("|") and (table or starts):
            if not table:
                flush_text()
            table.append(line)
            continue
        if table:
            parts.append("\n".join(table))
            table.clear()
        if text or line.strip():
            text.append(line.rstrip())
    if table:
        parts.append("\n".join(table))
    flush_text()
    return "\n\n".join(parts)


def block(bench: Bench, command: str, output: str, stamp: str) -> str:
    """The whole marked block for ``bench``."""
    return (
        f"<!-- bench:{bench.name} -->\n"
        f"Latest `make bench` run: `{command}`, {stamp}"
        f" (long run: `.venv/bin/python -m bench.{bench.module}`).\n\n"
        f"{render(output)}\n"
        f"<!-- /bench:{bench.name} -->"
    )


def replace_block(doc: str, bench: Bench, new: str) -> str:
    """``doc`` with ``bench``'s block replaced by ``new``; a missing block goes at the end of
    the bench's section (before the next ``## `` heading). Raises ValueError if neither exists."""
    marked = re.compile(
        rf"<!-- bench:{re.escape(bench.name)} -->.*?<!-- /bench:{re.escape(bench.name)} -->",
        re.DOTALL,
    )
    if marked.search(doc):
        return marked.sub(lambda _: new, doc, count=1)
    start = next((m.start() for m in re.finditer(r"^## .*$", doc, re.M)
                  if m.group().startswith(bench.section)), None)  # fmt: skip
    if start is None:
        raise ValueError(f"no section starting {bench.section!r} for bench:{bench.name}")
    after = re.compile(r"^## ", re.M).search(doc, start + 3)
    end = after.start() if after else len(doc)
    head = doc[:end].rstrip("\n")
    return f"{head}\n\n{new}\n\n{doc[end:]}" if after else f"{head}\n\n{new}\n"


def stamp() -> str:
    """Date, nproc and commit (with "+ local changes" when the work tree differs)."""

    def git(*args: str) -> str:
        got = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return got.stdout.strip() if got.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    if git("status", "--porcelain", "--untracked-files=no"):
        commit += " + local changes"
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"{when}, nproc {os.cpu_count()}, commit {commit}"


def run(bench: Bench, long: bool) -> tuple[str, str | None]:
    """Run one script; (the command shown, its stdout or None when it failed)."""
    args = () if long else bench.quick
    argv = [sys.executable, "-m", f"bench.{bench.module}", *args]
    shown = " ".join([".venv/bin/python", *argv[1:]])
    print(f"== {shown}", flush=True)
    started = time.monotonic()
    try:
        got = subprocess.run(
            argv, cwd=ROOT, capture_output=True, text=True, timeout=None if long else bench.timeout
        )
    except subprocess.TimeoutExpired:
        print(f"   timed out after {bench.timeout:g} s: block kept", file=sys.stderr)
        return shown, None
    print(f"   {time.monotonic() - started:.0f} s, exit {got.returncode}", flush=True)
    if got.returncode != 0:
        print(got.stderr[-2000:], file=sys.stderr)
        return shown, None
    return shown, got.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", metavar="NAME", help="this block only")
    parser.add_argument("--long", action="store_true", help="each script's own defaults")
    parser.add_argument("--dry-run", action="store_true", help="print, do not write the doc")
    parser.add_argument("--doc", type=Path, default=DOC, help="the document to rewrite")
    args = parser.parse_args()
    missing = unregistered()
    for name in missing:
        print(
            f"bench/{name}.py has no entry in bench/publish.py BENCHES: add one (its quick"
            " arguments and its docs/benchmarks.md section), or list it in HELPERS",
            file=sys.stderr,
        )
    names = {b.name for b in BENCHES}
    unknown = sorted(set(args.only or ()) - names)
    if unknown:
        parser.error(f"no bench {', '.join(unknown)}; choose from {', '.join(sorted(names))}")
    chosen = [b for b in BENCHES if not args.only or b.name in args.only]
    failed = []
    for bench in chosen:
        shown, output = run(bench, args.long)
        if output is None:
            failed.append(bench.name)
            continue
        new = block(bench, shown, output, stamp())
        if args.dry_run:
            print(new)
            continue
        doc = args.doc.read_text()  # re-read: write one block at a time, as each finishes
        args.doc.write_text(replace_block(doc, bench, new))
    if failed:
        print(f"failed (blocks kept): {', '.join(failed)}", file=sys.stderr)
    return 1 if failed or missing else 0


if __name__ == "__main__":
    sys.exit(main())
