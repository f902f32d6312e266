"""Fixtures of the command-line tests: the simulated SMSC (tests.harness.simulator)."""

from tests.harness.simulator import make_simulator  # noqa: F401  (fixture)
