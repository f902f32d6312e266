"""The simulated SMSC's settings: one frozen dataclass, every knob with its default and unit."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from smpp.codec.tlv import MESSAGE_STATES

MESSAGE_ID_FORMATS = ("decimal", "sequential", "hex", "uuid")
RECEIPT_ID_FORMATS = ("same", "hex", "decimal")


class SimulatorConfigError(ValueError):
    """A simulator setting is invalid; the message says which and what is allowed."""


@dataclass(frozen=True)
class SimulatorConfig:
    host: str = "127.0.0.1"  # address to listen on (tests: loopback only)
    port: int = 0  # TCP port; 0 = an ephemeral port chosen by the OS
    system_id: str | None = None  # the only system_id accepted; None = any credentials
    password: str | None = None  # the password for system_id; None = any password
    smsc_system_id: str = "SIMSMSC"  # system_id the SMSC names itself in bind responses
    max_binds_per_system_id: int | None = None  # concurrent binds per system_id; None = no cap
    # submit_sm_resp ids: "decimal" (random 10-digit start), "sequential" (decimal from 1),
    # "hex" (upper) or "uuid"
    message_id_format: str = "decimal"
    receipt_id_format: str = "same"  # id form in receipts: "same", "hex" or "decimal"
    dlr_delay: float = 0.0  # seconds from submit_sm_resp to the delivery receipt
    # seconds: with it, each receipt's delay is uniform in [dlr_delay, dlr_delay_max] (seeded);
    # None = every receipt after exactly dlr_delay
    dlr_delay_max: float | None = None
    outcomes: Mapping[str, float] = field(default_factory=lambda: {"DELIVRD": 1.0})  # stat: weight
    seed: int | None = None  # seeds outcomes, ids and receipt delays; None = random each start
    scenarios: tuple[Any, ...] = ()  # Scenario objects or specs like "throttle:tps=100"
    record_limit: int = 100_000  # most PDUs kept per bind, and messages/receipts kept in all
    pending_receipt_limit: int = 100_000  # receipts held for a system_id with no receiver bound
    # seconds after which a receipt answered with an error status (ESME_RX_T_APPN...) is sent
    # again, as an SMSC retries, up to 10 sends; None = only resend_receipts() sends it again
    receipt_retry_seconds: float | None = None
    stop_timeout: float = 5.0  # seconds stop() waits for the server thread

    def __post_init__(self) -> None:
        if self.message_id_format not in MESSAGE_ID_FORMATS:
            raise SimulatorConfigError(
                f"message_id_format {self.message_id_format!r}: use one "
                f"of {', '.join(MESSAGE_ID_FORMATS)}"
            )
        if self.receipt_id_format not in RECEIPT_ID_FORMATS:
            raise SimulatorConfigError(
                f"receipt_id_format {self.receipt_id_format!r}: use one "
                f"of {', '.join(RECEIPT_ID_FORMATS)}"
            )
        if self.message_id_format == "uuid" and self.receipt_id_format != "same":
            raise SimulatorConfigError(
                "receipt_id_format hex/decimal needs numeric ids: use "
                "message_id_format decimal or hex with it"
            )
        _check_outcomes(self.outcomes)
        if isinstance(self.port, bool) or not 0 <= self.port <= 65535:
            raise SimulatorConfigError(f"port must be from 0 (ephemeral) to 65535, got {self.port}")
        for name in ("dlr_delay", "stop_timeout"):
            if not math.isfinite(getattr(self, name)) or getattr(self, name) < 0:
                raise SimulatorConfigError(f"{name} must be >= 0 seconds")
        if self.dlr_delay_max is not None and not math.isfinite(self.dlr_delay_max):
            raise SimulatorConfigError("dlr_delay_max must be a finite number of seconds")
        if self.dlr_delay_max is not None and not self.dlr_delay_max >= self.dlr_delay:
            raise SimulatorConfigError(
                f"dlr_delay_max ({self.dlr_delay_max}) must be >= dlr_delay ({self.dlr_delay})"
                " seconds, or None for a fixed delay"
            )
        if self.receipt_retry_seconds is not None and not self.receipt_retry_seconds > 0:
            raise SimulatorConfigError("receipt_retry_seconds must be > 0 (or None: no retries)")
        if self.max_binds_per_system_id is not None and self.max_binds_per_system_id < 1:
            raise SimulatorConfigError("max_binds_per_system_id must be >= 1 (or None: no cap)")
        if self.record_limit < 0 or self.pending_receipt_limit < 0:
            raise SimulatorConfigError("record_limit and pending_receipt_limit must be >= 0")
        object.__setattr__(self, "outcomes", dict(self.outcomes))
        object.__setattr__(self, "scenarios", tuple(self.scenarios))

    def replace(self, **changes: Any) -> SimulatorConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


def _check_outcomes(outcomes: Mapping[str, float]) -> None:
    if not outcomes:
        raise SimulatorConfigError("outcomes must name at least one stat, e.g. {'DELIVRD': 1}")
    for stat, weight in outcomes.items():
        if stat not in MESSAGE_STATES:
            raise SimulatorConfigError(
                f"outcome {stat!r} is not a receipt stat; use {', '.join(MESSAGE_STATES)}"
            )
        if not weight >= 0:
            raise SimulatorConfigError(f"outcome weight for {stat} must be >= 0, got {weight}")
    if sum(outcomes.values()) <= 0:
        raise SimulatorConfigError("outcome weights must not all be 0")


def parse_outcomes(text: str) -> dict[str, float]:
    """'DELIVRD=0.9,UNDELIV=0.1' -> {'DELIVRD': 0.9, 'UNDELIV': 0.1} (command-line form)."""
    outcomes: dict[str, float] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        stat, sep, weight = item.partition("=")
        try:
            outcomes[stat.strip().upper()] = float(weight) if sep else 1.0
        except ValueError:
            raise SimulatorConfigError(
                f"outcome weight {weight!r} for {stat} is not a "
                "number; write e.g. DELIVRD=0.9,UNDELIV=0.1"
            ) from None
    _check_outcomes(outcomes)
    return outcomes
