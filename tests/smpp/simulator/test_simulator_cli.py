"""`smpp-bridge simulator` as its own process: prints its address, answers binds, stops on
SIGTERM with exit code 0; bad arguments give one line and a non-zero exit."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from smpp.codec import pdu
from tests.harness.procs import running, stop_process
from tests.harness.simulator import RawEsme

SCRIPT = os.path.join(os.path.dirname(sys.executable), "smpp-bridge")
COMMAND = (
    [SCRIPT]
    if os.path.exists(SCRIPT)
    else [sys.executable, "-c", "import sys; from bridge.cli import main; sys.exit(main())"]
)
LINE = re.compile(r"smpp-bridge simulator listening on (127\.0\.0\.1):(\d+) \(system_id (\S+)\)\n")


def _address(log_path) -> re.Match | None:
    with open(log_path) as log:
        return LINE.fullmatch(log.read())


def test_cli_prints_its_address_answers_and_stops_on_sigterm(tmp_path):
    log_path = tmp_path / "simulator.log"
    argv = [
        *COMMAND,
        "simulator",
        "--system-id",
        "bridge",
        "--password",
        "pw",
        "--scenario",
        "reject-prefix:prefixes=999",
        "latency:ms=1",
        "--outcomes",
        "UNDELIV=1",
        "--receipt-id-format",
        "hex",
    ]
    with running(argv, ready=lambda: _address(log_path), log_path=str(log_path)) as proc:
        match = _address(log_path)
        assert match is not None
        assert match.group(3) == "bridge"
        with RawEsme((match.group(1), int(match.group(2)))) as client:
            assert client.bind("transceiver", "bridge", "wrong").command_status == 0x0E
            assert client.bind("transceiver", "bridge", "pw").command_status == 0
            assert client.submit(dest="999").command_status == 0x0B
            resp = client.submit(registered_delivery=1)
            deliver, _ = client.read_until(pdu.DELIVER_SM)
            assert isinstance(resp.body, tuple) and isinstance(deliver.body, pdu.ShortMessage)
            assert f"id:{int(resp.body[0]):X} ".encode() in deliver.body.short_message
            assert b"stat:UNDELIV" in deliver.body.short_message
            stop_process(proc)
            assert client.closed_by_peer()
        assert proc.returncode == 0
    assert _address(log_path)  # still exactly the one line: nothing else was printed


@pytest.mark.parametrize(
    "args,message",
    [
        (["--scenario", "warp:speed=9"], "unknown scenario 'warp'"),
        (["--outcomes", "LOST=1"], "not a receipt stat"),
        (["--message-id-format", "uuid", "--receipt-id-format", "hex"], "needs numeric ids"),
        (["--dlr-delay", "soon"], "invalid float value"),
        (["--dlr-delay", "2", "--dlr-delay-max", "1"], "dlr_delay_max (1.0) must be >= dlr_delay"),
        (["--dlr-delay", "nan"], "dlr_delay must be >= 0 seconds"),
        (["--dlr-delay-max", "inf"], "dlr_delay_max must be a finite number"),
        (["--port", "70000"], "port must be from 0 (ephemeral) to 65535, got 70000"),
    ],
)
def test_cli_bad_arguments_give_one_line_and_exit_2(args, message):
    result = subprocess.run(
        [*COMMAND, "simulator", *args], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 2
    assert message in result.stderr and result.stderr.count("\n") == 1
    assert result.stdout == ""


def test_cli_flags_reach_the_config():
    """--message-id-format sequential and --dlr-delay/--dlr-delay-max land in SimulatorConfig."""
    import argparse

    from bridge.cli.simulator import config_from_args, register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(
        [
            "simulator",
            "--message-id-format",
            "sequential",
            "--dlr-delay",
            "0",
            "--dlr-delay-max",
            "120",
            "--seed",
            "5",
        ]
    )
    config = config_from_args(args)
    assert (config.message_id_format, config.dlr_delay, config.dlr_delay_max, config.seed) == (
        "sequential",
        0.0,
        120.0,
        5,
    )
