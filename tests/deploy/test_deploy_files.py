"""deploy/: the systemd units, the environment file, the compose file and the Dockerfile name
only commands and settings the bridge has. Docker cannot run here, so the compose file is
checked as YAML; the units go through `systemd-analyze verify` where it is installed."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bridge.cli import build_parser
from bridge.config import load_config
from bridge.config.core import _ENV

yaml = pytest.importorskip("yaml")
DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
UNITS = {"api": "api", "worker": "worker", "webhooks": "webhooks"}  # unit suffix -> command
SMPP_BRIDGE = str(Path(sys.executable).parent / "smpp-bridge")


class _CaseSensitiveParser(configparser.ConfigParser):
    def optionxform(self, optionstr: str) -> str:  # systemd keys are case-sensitive
        return optionstr


def _unit(kind: str) -> configparser.ConfigParser:
    parser = _CaseSensitiveParser(strict=False, interpolation=None)
    parser.read(DEPLOY / "systemd" / f"smpp-bridge-{kind}.service")
    return parser


def _commands() -> set[str]:
    return set(build_parser().commands)


@pytest.mark.parametrize("kind", sorted(UNITS))
def test_each_unit_runs_its_command_as_the_service_user(kind):
    unit = _unit(kind)
    service = unit["Service"]
    argv = service["ExecStart"].split()
    assert argv[0].endswith("/bin/smpp-bridge") and argv[1:] == [UNITS[kind]]
    assert UNITS[kind] in _commands()
    assert service["User"] == "smpp-bridge" and service["KillMode"] == "mixed"
    assert service["EnvironmentFile"] == "/etc/smpp-bridge/smpp-bridge.env"
    assert service["Restart"] == "on-failure" and unit["Install"]["WantedBy"]
    assert float(service["TimeoutStopSec"]) >= 30


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
@pytest.mark.parametrize("kind", sorted(UNITS))
def test_systemd_analyze_verifies_each_unit(kind, tmp_path):
    """With ExecStart pointed at this venv's script (verify checks the file exists)."""
    name = f"smpp-bridge-{kind}.service"
    text = (DEPLOY / "systemd" / name).read_text()
    (tmp_path / name).write_text(text.replace("/opt/smpp-bridge/venv/bin/smpp-bridge", SMPP_BRIDGE))
    done = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(tmp_path / name)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr


def _env_example() -> dict[str, str]:
    values = {}
    for line in (DEPLOY / "smpp-bridge.env.example").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name] = value
    return values


def test_the_environment_example_sets_only_real_settings_that_load(tmp_path):
    values = _env_example()
    assert {"DATABASE_URL", "REDIS_URL", "BRIDGE_CONFIG"} <= set(values)
    assert set(values) - {"BRIDGE_CONFIG"} <= set(_ENV), set(values) - set(_ENV)
    config = load_config(env={k: v for k, v in values.items() if k != "BRIDGE_CONFIG"})
    assert config.database_url.startswith("postgresql+psycopg://")
    assert config.redis_url is not None and config.redis_url.startswith("redis://:")


def test_the_compose_file_runs_every_process_kind_on_postgres_and_a_durable_redis():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"migrate", "api", "worker", "webhooks", "redis", "postgres"}
    commands = _commands()
    for name in ("migrate", "api", "worker", "webhooks"):
        service = services[name]
        assert service["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
        assert service["command"][0] in commands, service["command"]
        env = service["environment"]
        assert set(env) - {"BRIDGE_CONFIG"} <= set(_ENV)
        assert env["DATABASE_URL"].startswith("postgresql+psycopg://smpp_bridge:")
        assert "@postgres:5432/" in env["DATABASE_URL"] and "@redis:6379/" in env["REDIS_URL"]
    assert services["migrate"]["command"] == ["db", "upgrade"]
    for name in ("api", "worker", "webhooks"):  # started only after the migrations succeeded
        assert services[name]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }
    assert services["api"]["ports"] == ["127.0.0.1:8080:8080"]  # behind the proxy, not public
    redis_command = " ".join(services["redis"]["command"])
    for setting in ("--appendonly yes", "--appendfsync everysec", "noeviction", "requirepass"):
        assert setting in redis_command
    assert "--requirepass" not in redis_command  # the password is not on the command line
    assert services["redis"]["volumes"] == ["redis-data:/data"]
    assert services["postgres"]["volumes"] == ["postgres-data:/var/lib/postgresql/data"]
    assert set(compose["volumes"]) == {"redis-data", "postgres-data"}


def test_the_dockerfile_installs_at_the_pins_and_runs_the_cli():
    text = (DEPLOY / "Dockerfile").read_text()
    assert "pip install -c constraints.txt ." in text
    assert 'ENTRYPOINT ["smpp-bridge"]' in text and 'CMD ["api"]' in text
    assert "USER smpp-bridge" in text
    for copied in ("pyproject.toml", "constraints.txt", "api", "bridge", "smpp"):
        assert copied in text
