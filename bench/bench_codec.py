"""Codec micro-benchmark: count_parts / segment / build_submit_parts / parse_receipt per call.

Run: .venv/bin/python -m bench.bench_codec [--repeat 7]
Prints one row per (function, text) with the median of `repeat` timed runs, in microseconds.
Wall-clock figures: quote them with `nproc` and whether the machine was shared.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import timeit

from smpp.codec import build_submit_parts, count_parts, segment
from smpp.codec.receipt import parse_receipt

TEXTS = {
    "ascii 67": "Your verification code is 482913. It expires in 10 minutes. Thanks!",
    "ascii 400": ("Dear customer, your order #12345 has shipped and arrives Tuesday. " * 7)[:400],
    "gsm+ext 300": ("Price: 10€ [promo] {code} ~ok | " * 10)[:300],
    "ucs2 75": "Привет! Ваш код подтверждения 482913. Он истекает через 10 минут. Спасибо!!",
    "emoji 192": ("Hello 😀 world 🎉 " * 12)[:192],
}
RECEIPT = (
    b"id:1A2B3C4D sub:001 dlvrd:001 submit date:2406011200 done date:2406011201 "
    b"stat:DELIVRD err:000 text:Your verification code is 48"
)


def _median_us(fn, number: int, repeat: int) -> float:
    return statistics.median(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="timed runs per row (median)")
    args = parser.parse_args()
    print(f"nproc={os.cpu_count()}  python={sys.version.split()[0]}  repeat={args.repeat}")
    print(f"{'function':<20} {'text':<12} {'median us':>10}  result")
    for label, text in TEXTS.items():
        rows = [
            ("count_parts", lambda t=text: count_parts(t), count_parts(text)),
            ("segment", lambda t=text: segment(t), segment(text).parts),
            (
                "build_submit_parts",
                lambda t=text: build_submit_parts(t),
                len(build_submit_parts(text)),
            ),
        ]
        for name, fn, result in rows:
            print(f"{name:<20} {label:<12} {_median_us(fn, 5000, args.repeat):>10.2f}  {result}")
    receipt_us = _median_us(lambda: parse_receipt(RECEIPT), 5000, args.repeat)
    receipt = parse_receipt(RECEIPT)
    state = receipt.state if receipt is not None else "unparsed"
    print(f"{'parse_receipt':<20} {'spec text':<12} {receipt_us:>10.2f}  {state}")


if __name__ == "__main__":
    main()
