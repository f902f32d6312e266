"""The delivery tests' fixtures (a real Redis, SQLite and PostgreSQL, the simulator, the accept
service and workers), for the status document's tests."""

from tests.bridge.delivery.conftest import (  # noqa: F401  (fixtures)
    bridge,
    sim,
    spawn_worker,
    start_worker,
)
from tests.harness.simulator import make_simulator  # noqa: F401  (fixture)
