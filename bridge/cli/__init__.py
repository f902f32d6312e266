"""The `smpp-bridge` command line. Each sub-command group lives in its own module here and
exposes ``register(subparsers)``; a command's handler returns the process exit code.

Bad arguments, bad settings and domain errors print one line to stderr and exit non-zero, never
a traceback; with no arguments the usage line is printed (exit 2); ``--version`` prints the
installed package's version.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import NoReturn

from bridge.config import ConfigError


class CommandError(Exception):
    """A command failed in a way the user can fix; printed as one line, exit code 1 (or .code)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


class _Parser(argparse.ArgumentParser):
    commands: tuple[str, ...] = ()  # the sub-commands, for the one-line usage

    def error(self, message: str) -> NoReturn:  # one line, exit 2, no usage dump
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> _Parser:
    parser = _Parser(prog="smpp-bridge", description="SMPP protocol bridge")
    parser.add_argument("--version", action="version", version=f"smpp-bridge {version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    subparsers.required = True
    # imported here, not at the top: each of them imports CommandError from this module
    from bridge.cli import admin, audit, inbound, prove, run, simulator, status, webhooks, worker

    run.register(subparsers)  # run, api
    admin.register(subparsers)  # account ..., key ..., db upgrade
    simulator.register(subparsers)  # simulator
    worker.register(subparsers)  # worker
    status.register(subparsers)  # status
    audit.register(subparsers)  # audit
    webhooks.register(subparsers)  # webhooks, webhooks dead, webhooks resend
    prove.register(subparsers)  # prove faults
    inbound.register(subparsers)  # inbox unrouted
    parser.commands = tuple(subparsers.choices)
    return parser


def version() -> str:
    """The installed distribution's version ("unknown" when run from a bare source tree)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("smpp-bridge")
    except PackageNotFoundError:
        return "unknown"


def usage(parser: _Parser) -> str:
    """One line: the usage, the commands, and where the help is."""
    return (
        f"{parser.format_usage().strip()}; COMMAND is one of {', '.join(parser.commands)}"
        " (smpp-bridge -h, or smpp-bridge COMMAND -h, for help)"
    )


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(sys.argv[1:] if argv is None else argv)
    except BrokenPipeError:  # `smpp-bridge status | head`: the reader has all it wanted
        # what the Python docs advise: no traceback, and no second error when the interpreter
        # flushes stdout at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # as a shell reports a process ended by SIGPIPE (128 + 13)


def _main(argv: list[str]) -> int:
    parser = build_parser()
    if not argv:
        print(usage(parser), file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except (CommandError, ConfigError) as exc:
        print(f"smpp-bridge {args.command}: error: {exc}", file=sys.stderr)
        return getattr(exc, "code", 1)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # python -m bridge.cli
    sys.exit(main())
