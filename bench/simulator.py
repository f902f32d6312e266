"""How fast the simulated SMSC answers a pipelining client: submit_sm/s, with and without
delivery receipts. The simulator runs as `smpp-bridge simulator` in its own process; this
process is a raw-socket client using smpp.codec.pdu that keeps up to --window submits in flight and
answers every receipt with deliver_sm_resp. Prints a table of medians over --runs runs.

    .venv/bin/python -m bench.simulator [--messages 100000] [--window 2000] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import time
import timeit

from smpp.codec import pdu, tlv
from tests.harness.procs import stop_process as stop  # SIGTERM, then SIGKILL
from tests.harness.simproc import start_simulator


def run_once(
    address: tuple[str, int], messages: int, window: int, receipts: bool
) -> tuple[float, float]:
    """(submit_sm/s until the last submit_sm_resp, receipts/s until the last receipt)."""
    sock = socket.create_connection(address)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(pdu.encode_bind(pdu.BIND_TRANSCEIVER, 1, pdu.Bind("bench", "bench")))
    buffer = b""
    while len(buffer) < 16 or len(buffer) < int.from_bytes(buffer[:4], "big"):
        buffer += sock.recv(4096)
    template = pdu.encode_submit_sm(
        0,
        pdu.ShortMessage(
            source_addr="BENCH",
            source_addr_ton=5,
            dest_addr_ton=1,
            dest_addr_npi=1,
            destination_addr="254700000000",
            registered_delivery=1 if receipts else 0,
            short_message=b"benchmark message of some sixty characters, GSM 7-bit text.",
        ),
    )
    size, pack_into = len(template), pdu.HEADER.pack_into
    sent = acked = delivered = 0
    buffer = b""
    start = time.perf_counter()
    acked_at = None
    while acked < messages or (receipts and delivered < messages):
        batch = min(window - (sent - acked), messages - sent, 1000)
        if batch > 0:
            chunk = bytearray(template * batch)
            for i in range(batch):
                pack_into(chunk, i * size, size, pdu.SUBMIT_SM, 0, sent + i + 2)
            sock.sendall(chunk)
            sent += batch
        data = sock.recv(1 << 20)
        if not data:
            raise SystemExit("simulator closed the connection")
        frames, buffer = pdu.split_frames(buffer + data)
        answers = []
        for frame in frames:
            _, command_id, _status, seq = pdu.HEADER.unpack_from(frame)
            if command_id == pdu.SUBMIT_SM_RESP:
                acked += 1
            elif command_id == pdu.DELIVER_SM:
                delivered += 1
                answers.append(pdu.encode_deliver_sm_resp(seq))
        if answers:
            sock.sendall(b"".join(answers))
        if acked >= messages and acked_at is None:
            acked_at = time.perf_counter()
    end = time.perf_counter()
    sock.close()
    assert acked_at is not None  # the loop ends only once every submit was answered
    return messages / (acked_at - start), (messages / (end - start) if receipts else 0.0)


def codec_table(repeat: int = 5, number: int = 20_000) -> None:
    """Microseconds per call of the smpp.codec.pdu functions on the submit path (median of runs)."""
    message = pdu.ShortMessage(
        source_addr="BENCH",
        source_addr_ton=5,
        destination_addr="254700000000",
        registered_delivery=1,
        short_message=b"x" * 60,
    )
    submit = pdu.encode_submit_sm(7, message)
    resp = pdu.encode_submit_sm_resp(7, "2890515918")
    receipt = pdu.encode_deliver_sm(
        3,
        pdu.ShortMessage(
            source_addr="254700000000",
            destination_addr="BENCH",
            esm_class=4,
            short_message=b"id:2890515918 sub:001 dlvrd:001 submit date:2611241550 done date:"
            b"2611241550 stat:DELIVRD err:000 text:xxxxxxxxxxxxxxxxxxxx",
            tlvs={tlv.TAG_RECEIPTED_MESSAGE_ID: b"2890515918\0", tlv.TAG_MESSAGE_STATE: b"\2"},
        ),
    )
    stream = submit * 100
    rows = [
        ("encode_submit_sm", lambda: pdu.encode_submit_sm(7, message), 1),
        ("decode_short_message (submit_sm)", lambda: pdu.decode_short_message(submit[16:]), 1),
        ("encode_submit_sm_resp", lambda: pdu.encode_submit_sm_resp(7, "2890515918"), 1),
        ("decode_submit_sm_resp", lambda: pdu.decode_submit_sm_resp(resp[16:]), 1),
        ("decode_pdu (receipt deliver_sm)", lambda: pdu.decode_pdu(receipt), 1),
        ("split_frames (per frame of 100)", lambda: pdu.split_frames(stream), 100),
    ]
    print(f"{'smpp.codec.pdu function':<36} {'us/call (median)':>17}")
    for label, fn, per in rows:
        times = timeit.repeat(fn, number=number, repeat=repeat)
        print(f"{label:<36} {statistics.median(times) / number / per * 1e6:>17.2f}")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--window", type=int, default=2_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    codec_table()
    modes = [
        ("no receipts", False, []),
        ("receipts, dlr-delay 0", True, []),
        ("receipts, dlr-delay 1s", True, ["--dlr-delay", "1"]),
    ]
    print(
        f"# simulated SMSC, {args.messages} submit_sm per run, window {args.window}, "
        f"{args.runs} runs, nproc {os.cpu_count()}"
    )
    print(f"{'mode':<24} {'submit_sm/s (median)':>21} {'receipts/s (median)':>20} {'runs':>30}")
    for label, receipts, extra in modes:
        proc, address = start_simulator(extra)
        try:
            results = [
                run_once(address, args.messages, args.window, receipts) for _ in range(args.runs)
            ]
        finally:
            stop(proc)
        submit = statistics.median(r[0] for r in results)
        dlr = statistics.median(r[1] for r in results)
        runs = " ".join(f"{r[0]:.0f}" for r in results)
        print(f"{label:<24} {submit:>21,.0f} {dlr:>20,.0f} {runs:>30}", flush=True)


if __name__ == "__main__":
    main()
