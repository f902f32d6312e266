"""The ``[[smsc]]`` and ``[[route]]`` TOML tables: SMSC connections and routing rules, checked.

:func:`read_connections` and :func:`read_routes` turn the raw tables into frozen
:class:`Connection` and :class:`Route` values (or raise :class:`ConfigError` saying what to fix);
`bridge.routing.router` answers routing questions with them. With no ``[[smsc]]`` the one
connection is the simulated SMSC (:func:`simulator_connection`), which routes may name as
:data:`SIMULATOR`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import phonenumbers

from bridge.config.reader import ConfigError, Table
from smpp.codec import METHODS as LONG_MESSAGE_METHODS

BIND_MODES = ("transceiver", "pair")
MESSAGE_ID_FORMS = ("auto", "dec", "hex", "str")
VALIDITY_FORMS = ("absolute", "relative")  # how submit_sm writes validity_period (SMPP §7.1.1)
SIMULATOR = "simulator"  # name of the connection used when no [[smsc]] is configured


@dataclass(frozen=True)
class Connection:
    """One SMSC account and how to bind to it (one ``[[smsc]]`` table)."""

    name: str  # unique name that routes refer to
    host: str  # SMSC host name or address
    port: int  # SMSC TCP port, 1..65535
    system_id: str  # bind_* system_id (SMPP: at most 15 characters)
    password: str = field(repr=False)  # bind_* password (SMPP: at most 8 characters)
    system_type: str = ""  # bind_* system_type, often empty (SMPP: at most 12 characters)
    bind_mode: str = (
        "transceiver"  # "transceiver" = one bind both ways; "pair" = transmitter + receiver
    )
    binds: int = 1  # binds (or bind pairs) each worker process opens to this SMSC
    max_binds: int = 0  # fleet-wide cap on binds of this SMSC account (Redis leases); 0 = binds
    window: int = 10  # unacknowledged submit_sm allowed per bind
    tps: float | None = None  # fleet-wide messages per second for this account; None = no limit
    tps_burst: int | None = (
        None  # messages that may go at once after idling; None = tps/10, at least 1
    )
    enquire_link_interval: float = 30.0  # seconds of silence before we send enquire_link
    response_timeout: float = 10.0  # seconds to wait for any *_resp before the bind is dead
    source_ton: int | None = (
        None  # source_addr_ton; None = auto: 1 for numeric senders, 5 for alphanumeric
    )
    source_npi: int | None = (
        None  # source_addr_npi; None = auto: 1 for numeric senders, 0 for alphanumeric
    )
    dest_ton: int = 1  # dest_addr_ton (1 = international)
    dest_npi: int = 1  # dest_addr_npi (1 = ISDN/E.164)
    message_id_form: str = (
        "auto"  # how the SMSC writes message ids: "auto" detect, "dec", "hex", "str"
    )
    long_message: str = "udh"  # long texts: "udh" (8-bit ref), "udh16", "sar" TLVs, "payload" TLV
    # submit_sm validity_period: "absolute" UTC moment, or "relative" (time left when each
    # submit_sm is built) for SMSCs that misread absolute times
    validity_form: str = "absolute"
    account: str = ""  # key of the SMSC account for leases and TPS; "" = "host:port:system_id"

    def __post_init__(self) -> None:
        if not self.account:
            object.__setattr__(self, "account", f"{self.host}:{self.port}:{self.system_id}")
        if not self.max_binds:
            object.__setattr__(self, "max_binds", self.binds)

    @property
    def burst(self) -> int:
        """The token-bucket burst for this account (only meaningful when ``tps`` is set)."""
        if self.tps_burst is not None:
            return self.tps_burst
        return default_burst(self.tps) if self.tps else 1

    def source_address(self, sender: str) -> tuple[str, int, int]:
        """(source_addr, ton, npi) for a sender id, honouring explicit source_ton/source_npi.

        Numeric senders ("+254700000000", "22141") go without "+" as TON 1 / NPI 1; anything
        else is alphanumeric, TON 5 / NPI 0. Short codes that need another TON (e.g. 3) must set
        source_ton / source_npi explicitly.
        """
        digits = sender.removeprefix("+")
        if digits.isdigit() and digits.isascii():
            address, ton, npi = digits, 1, 1
        else:
            address, ton, npi = sender, 5, 0
        return (
            address,
            ton if self.source_ton is None else self.source_ton,
            npi if self.source_npi is None else self.source_npi,
        )


def default_burst(tps: float) -> int:
    """A tenth of a second's worth of messages, at least 1: smooth, yet batchable."""
    return max(1, int(tps / 10))


@dataclass(frozen=True)
class Route:
    """A routing rule (one ``[[route]]`` table): which numbers, which connections, what price."""

    name: str  # unique name, shown in logs and status
    # connection names: the first is primary, the rest failover in order
    connections: tuple[str, ...]
    prefixes: tuple[str, ...] = ()  # international digit prefixes ("25470"); any one matches
    carriers: tuple[str, ...] = ()  # carrier names, case-folded ("safaricom"); any one matches
    price_per_part: Decimal | None = None  # price of one SMS part here; None = the top-level one
    default: bool = False  # matches every number; checked after all other routes

    def matches(self, digits: str, carrier: Callable[[], str]) -> bool:
        """True when the number's digits start with a prefix or its carrier is one of ours."""
        if self.default or (self.prefixes and digits.startswith(self.prefixes)):
            return True
        return bool(self.carriers) and carrier() in self.carriers


def simulator_connection(host: str, port: int, **changes: Any) -> Connection:
    """The connection to the simulated SMSC that `smpp-bridge run` starts (port 0 = not yet)."""
    fields: dict[str, Any] = {
        "name": SIMULATOR,
        "host": host,
        "port": port,
        "system_id": "bridge",
        "password": "bridge",
        "binds": 2,
        "window": 50,
    }
    return Connection(**{**fields, **changes})


# --- reading the tables ---------------------------------------------------------------

_SMSC_KEYS = (
    "name",
    "host",
    "port",
    "system_id",
    "password",
    "system_type",
    "bind_mode",
    "binds",
    "max_binds",
    "window",
    "tps",
    "tps_burst",
    "enquire_link_interval",
    "response_timeout",
    "source_ton",
    "source_npi",
    "dest_ton",
    "dest_npi",
    "message_id_form",
    "long_message",
    "validity_form",
    "account",
)
_ROUTE_KEYS = ("name", "prefixes", "carriers", "connections", "price_per_part", "default")


def read_connections(tables: Iterable[Any]) -> tuple[Connection, ...]:
    """Check the ``[[smsc]]`` tables (raw TOML tables, or Connections already read)."""
    connections: list[Connection] = []
    for index, raw in enumerate(tables, 1):
        label = raw.get("name") if isinstance(raw, Mapping) else getattr(raw, "name", None)
        where = f"[[smsc]] #{index}" + (f" ({label!r})" if isinstance(label, str) else "")
        conn = (
            raw if isinstance(raw, Connection) else _read_connection(Table(raw, where, _SMSC_KEYS))
        )
        if any(c.name == conn.name for c in connections):
            raise ConfigError(
                f"{where}: name {conn.name!r} is used by another [[smsc]]; "
                "connection names must be unique"
            )
        connections.append(conn)
    _check_shared_accounts(connections)
    return tuple(connections)


def _read_connection(t: Table) -> Connection:
    binds = t.integer("binds", 1, lo=1, hi=64)
    tps = t.rate("tps")
    return Connection(
        name=t.text("name").strip(),
        host=t.text("host").strip(),
        port=t.integer("port", lo=1, hi=65535),
        system_id=t.text("system_id", max_len=15),
        password=t.text("password", max_len=8, empty=True),
        system_type=t.text("system_type", "", max_len=12, empty=True),
        bind_mode=t.choice("bind_mode", "transceiver", BIND_MODES),
        binds=binds,
        max_binds=t.integer("max_binds", binds, lo=1, hi=1024),
        window=t.integer("window", 10, lo=1, hi=10_000),
        tps=tps,
        tps_burst=t.integer("tps_burst", None, lo=1),
        enquire_link_interval=t.seconds("enquire_link_interval", 30.0),
        response_timeout=t.seconds("response_timeout", 10.0),
        source_ton=t.integer("source_ton", None, lo=0, hi=6),
        source_npi=t.integer("source_npi", None, lo=0, hi=18),
        dest_ton=t.integer("dest_ton", 1, lo=0, hi=6),
        dest_npi=t.integer("dest_npi", 1, lo=0, hi=18),
        message_id_form=t.choice("message_id_form", "auto", MESSAGE_ID_FORMS),
        long_message=t.choice("long_message", "udh", LONG_MESSAGE_METHODS),
        validity_form=t.choice("validity_form", "absolute", VALIDITY_FORMS),
        account=t.text("account", "", empty=True).strip(),
    )


def _check_shared_accounts(connections: list[Connection]) -> None:
    """Connections on one SMSC account share its caps, so they must state the same ones."""
    first: dict[str, Connection] = {}
    for conn in connections:
        other = first.setdefault(conn.account, conn)
        for key in ("max_binds", "tps", "tps_burst"):
            if getattr(other, key) != getattr(conn, key):
                raise ConfigError(
                    f"[[smsc]] {other.name!r} and {conn.name!r} share SMSC account "
                    f"{conn.account!r} but set different {key} ({getattr(other, key)!r} vs "
                    f"{getattr(conn, key)!r}); give them the same value, or distinct 'account' keys"
                )


def read_routes(
    tables: Iterable[Any], connections: tuple[str, ...], region: str
) -> tuple[Route, ...]:
    """Check the ``[[route]]`` tables (raw, or Routes already read) against the connection
    names; ``region`` only words the advice for a national-form prefix."""
    routes: list[Route] = []
    for index, raw in enumerate(tables, 1):
        label = raw.get("name") if isinstance(raw, Mapping) else getattr(raw, "name", None)
        where = f"[[route]] #{index}" + (f" ({label!r})" if isinstance(label, str) else "")
        if isinstance(raw, Route):
            route = raw
            _check_connections(where, route.connections, connections)
        else:
            route = _read_route(Table(raw, where, _ROUTE_KEYS), connections, region)
        if any(r.name == route.name for r in routes):
            raise ConfigError(
                f"{where}: name {route.name!r} is used by another [[route]]; "
                "route names must be unique"
            )
        if route.default and any(r.default for r in routes):
            raise ConfigError(
                f"{where}: a second default route; only one route may set default = true"
            )
        routes.append(route)
    return tuple(routes)


def _check_connections(where: str, wanted: tuple[str, ...], known: tuple[str, ...]) -> None:
    for conn in wanted:
        if conn not in known:
            raise ConfigError(
                f"{where}: connections names {conn!r}, which is not an [[smsc]] "
                f"name; configured: {', '.join(known)}"
            )


def _read_route(t: Table, known: tuple[str, ...], region: str) -> Route:
    name = t.text("name").strip()
    wanted = t.words("connections")
    if not wanted:
        raise t.fail("connections", "a non-empty list of [[smsc]] names", t.raw.get("connections"))
    _check_connections(t.where, wanted, known)
    if len(set(wanted)) != len(wanted):
        raise t.fail("connections", "a list without repeats", list(wanted))
    prefixes = tuple(_normalise_prefix(t, p, region) for p in t.words("prefixes"))
    names = tuple(_check_carrier(t, c) for c in t.words("carriers"))
    default = t.flag("default", False)
    if default and (prefixes or names):
        raise ConfigError(
            f"{t.where}: a default route matches every number; remove its "
            "prefixes/carriers or set default = false"
        )
    if not default and not (prefixes or names):
        raise ConfigError(f"{t.where}: give prefixes or carriers to match, or default = true")
    return Route(
        name=name,
        connections=wanted,
        prefixes=prefixes,
        carriers=names,
        price_per_part=t.money("price_per_part", None),
        default=default,
    )


def _normalise_prefix(t: Table, prefix: str, region: str) -> str:
    """'+254 70' -> '25470'; national forms ('070') are refused with the international spelling."""
    digits = "".join(ch for ch in prefix if ch not in " -")
    digits = digits.removeprefix("+")
    if not (digits.isdigit() and digits.isascii()):
        raise t.fail("prefixes", 'international number prefixes such as "+25470"', prefix)
    if digits.startswith("0"):
        cc = phonenumbers.country_code_for_region(region) or 254
        raise ConfigError(
            f"{t.where}: prefix {prefix!r} is in national form; write it "
            f'internationally, e.g. "+{cc}{digits.lstrip("0")}"'
        )
    return digits


def _check_carrier(t: Table, name: str) -> str:
    """Case-fold a carrier name, refusing names the phonenumbers data never uses (typos)."""
    folded = name.casefold()
    known = known_carrier_names()
    if known and folded not in known:
        raise ConfigError(
            f"{t.where}: carrier {name!r} is not in phonenumbers' carrier data; "
            'check the spelling (e.g. "Safaricom", "Airtel", "Telkom")'
        )
    return folded


@functools.cache
def known_carrier_names() -> frozenset[str]:
    """Every English carrier name in phonenumbers' data, case-folded (to catch typos)."""
    try:
        from phonenumbers.carrierdata import CARRIER_DATA

        return frozenset(v["en"].casefold() for v in CARRIER_DATA.values() if "en" in v)
    except (ImportError, TypeError, AttributeError):
        return frozenset()
