"""Reading one raw TOML table into checked values, and the error every config mistake raises.

`bridge.config.smsc` and `bridge.config.worker` build their dataclasses with :class:`Table`.
Every error is a :class:`ConfigError` that names the table, the key, what was found and what is
allowed, so an operator can fix the file without reading code.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any


class ConfigError(ValueError):
    """A configuration value is missing or malformed; the message says which and how to fix it."""


def check_least(config: Any, limits: Mapping[str, tuple[str, float]]) -> None:
    """Each ``field -> (environment variable, smallest value)`` of ``limits`` must be a finite
    number of at least that value; else a ConfigError naming the field and its variable."""
    for name, (var, least) in limits.items():
        value = getattr(config, name)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or value < least
        ):
            raise ConfigError(f"{name} ({var}) must be a number of at least {least}, got {value!r}")


_REQUIRED = object()


class Table:
    """One raw TOML table being read; unknown keys are refused so typos do not pass silently."""

    def __init__(self, raw: Any, where: str, known: Iterable[str]) -> None:
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{where} must be a table, got {type(raw).__name__}")
        self.raw = raw
        self.where = where
        unknown = sorted(set(raw) - set(known))
        if unknown:
            raise ConfigError(
                f"{where}: unknown key {unknown[0]!r}; known keys: {', '.join(sorted(known))}"
            )

    def fail(self, key: str, wanted: str, got: Any) -> ConfigError:
        """An error saying which key is wrong, what it must be, and what it was."""
        return ConfigError(f"{self.where}: {key} must be {wanted}, got {got!r}")

    def _get(self, key: str, default: Any) -> Any:
        if key in self.raw:
            return self.raw[key]
        if default is _REQUIRED:
            raise ConfigError(f"{self.where}: {key} is required")
        return default

    def text(
        self, key: str, default: Any = _REQUIRED, *, max_len: int | None = None, empty: bool = False
    ) -> str:
        """A string key; ``max_len`` is the SMPP field limit (characters, without the NUL)."""
        value = self._get(key, default)
        wanted = "a non-empty string" if not empty else "a string"
        if max_len is not None:
            wanted += f" of at most {max_len} characters"
        if not isinstance(value, str) or (not empty and not value.strip()):
            raise self.fail(key, wanted, value)
        if max_len is not None and len(value) > max_len:
            raise self.fail(key, wanted, value if key != "password" else "*" * len(value))
        return value

    def integer(self, key: str, default: Any = _REQUIRED, *, lo: int, hi: int | None = None) -> Any:
        """An integer key within [lo, hi] (``default`` may be None for 'not set')."""
        value = self._get(key, default)
        if value is None and default is None:
            return None
        wanted = f"an integer >= {lo}" if hi is None else f"an integer from {lo} to {hi}"
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, wanted, value)
        if value < lo or (hi is not None and value > hi):
            raise self.fail(key, wanted, value)
        return value

    def seconds(self, key: str, default: float) -> float:
        """A positive, finite number of seconds (integer or float in TOML)."""
        value = self._get(key, default)
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
            or value <= 0
        ):
            raise self.fail(key, "a positive number of seconds", value)
        return float(value)

    def rate(self, key: str) -> float | None:
        """A positive, finite messages-per-second figure, or None when the key is absent."""
        value = self._get(key, None)
        if value is None:
            return None
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
            or value <= 0
        ):
            raise self.fail(
                key, "a positive number (messages per second); leave it out for no limit", value
            )
        return float(value)

    def choice(self, key: str, default: str, choices: Iterable[str]) -> str:
        """One of a fixed set of words (compared exactly, lower case)."""
        choices = tuple(choices)
        value = self._get(key, default)
        if value not in choices:
            raise self.fail(key, "one of " + ", ".join(repr(c) for c in choices), value)
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self._get(key, default)
        if not isinstance(value, bool):
            raise self.fail(key, "true or false", value)
        return value

    def money(self, key: str, default: Decimal | None) -> Decimal | None:
        """A non-negative exact decimal; write it as a string ("0.80") to keep it exact.
        ``default`` may be None for 'not set'."""
        value = self._get(key, default)
        if value is None and default is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (str, int, float, Decimal)):
            raise self.fail(key, 'a non-negative decimal such as "0.80"', value)
        try:
            amount = Decimal(str(value).strip())
        except InvalidOperation:
            raise self.fail(key, 'a non-negative decimal such as "0.80"', value) from None
        if not amount.is_finite() or amount < 0:
            raise self.fail(key, 'a non-negative decimal such as "0.80"', value)
        return amount

    def words(self, key: str) -> tuple[str, ...]:
        """A list of non-empty strings (a single string is accepted as a list of one)."""
        value = self._get(key, [])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise self.fail(key, "a list of non-empty strings", value)
        return tuple(v.strip() for v in value)
