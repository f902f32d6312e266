"""Summarise py-spy collapsed stacks (bench/accept.py --profile DIR): the functions with the
most samples on the stack (inclusive) and at the top of it (self), as % of all samples.

Usage: .venv/bin/python -m bench.tools.profile_top DIR [--match TEXT] [--top 25]
"""

from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dir")
    parser.add_argument("--match", default="", help="only files whose name contains this")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    inclusive: collections.Counter = collections.Counter()
    own: collections.Counter = collections.Counter()
    total = 0
    for path in sorted(Path(args.dir).glob("*.txt")):
        if args.match not in path.name:
            continue
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack:
                continue
            n = int(count)
            frames = [
                f.split(" (")[0] + " (" + f.split(" (")[-1].split(":")[0].split("/")[-1] + ")"
                if " (" in f
                else f
                for f in stack.split(";")
            ]
            total += n
            own[frames[-1]] += n
            for frame in set(frames):
                inclusive[frame] += n
    if not total:
        print("no samples")
        return 1
    for title, counter in (("inclusive", inclusive), ("self", own)):
        print(f"\n{title} (of {total} samples)")
        for frame, n in counter.most_common(args.top):
            print(f"{100 * n / total:6.1f}%  {frame}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
