"""SMSC connections, routes and prices, from the ``[[smsc]]`` and ``[[route]]`` TOML tables.

:meth:`Router.from_config` checks every table and raises :class:`bridge.config.ConfigError`
saying what to fix. A :class:`Router` then answers, for an E.164 number, which route applies
(first match in file order, the default route last), which connections to try (the route's
primary first, failover after, connections that are down last) and what one SMS part costs. The
accept path calls :meth:`Router.price` once per recipient, so decisions are cached by the number
prefix that decides them. With no ``[[smsc]]`` at all the router sends everything to the
simulated SMSC (:data:`SIMULATOR`), which ``smpp-bridge run`` starts.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import phonenumbers

from bridge.config import Config, ConfigError
from bridge.routing import carriers
from bridge.routing.tables import Table
from smpp.codec import METHODS as LONG_MESSAGE_METHODS

BIND_MODES = ("transceiver", "pair")
MESSAGE_ID_FORMS = ("auto", "dec", "hex", "str")
SIMULATOR = "simulator"  # name of the connection used when no [[smsc]] is configured
_CACHE_SIZE = 65_536  # routing decisions kept, one per deciding number prefix


@dataclass(frozen=True)
class Connection:
    """One SMSC account and how to bind to it (one ``[[smsc]]`` table)."""

    name: str  # unique name that routes refer to
    host: str  # SMSC host name or address
    port: int  # SMSC TCP port, 1..65535
    system_id: str  # bind_* system_id (SMPP: at most 15 characters)
    password: str  # bind_* password (SMPP: at most 8 characters)
    system_type: str = ""  # bind_* system_type, often empty (SMPP: at most 12 characters)
    bind_mode: str = (
        "transceiver"  # "transceiver" = one bind both ways; "pair" = transmitter + receiver
    )
    binds: int = 1  # binds (or bind pairs) each worker process opens to this SMSC
    max_binds: int = (
        1  # fleet-wide cap on binds of this SMSC account (Redis leases); default = binds
    )
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
    account: str = ""  # key of the SMSC account for leases and TPS; "" = "host:port:system_id"

    def __post_init__(self) -> None:
        if not self.account:
            object.__setattr__(self, "account", f"{self.host}:{self.port}:{self.system_id}")

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
    connections: tuple[
        str, ...
    ]  # connection names: the first is primary, the rest failover in order
    prefixes: tuple[str, ...] = ()  # international digit prefixes ("25470"); any one matches
    carriers: tuple[str, ...] = ()  # carrier names, case-folded ("safaricom"); any one matches
    price_per_part: Decimal = Decimal("0.80")  # price of one SMS part on this route
    default: bool = False  # matches every number; checked after all other routes

    def matches(self, digits: str, carrier: Callable[[], str]) -> bool:
        """True when the number's digits start with a prefix or its carrier is one of ours."""
        if self.default or (self.prefixes and digits.startswith(self.prefixes)):
            return True
        return bool(self.carriers) and carrier() in self.carriers


class Router:
    """Routes, failover candidates and prices for E.164 numbers. Immutable and thread-safe."""

    def __init__(
        self, connections: Iterable[Connection], routes: Iterable[Route], fallback_price: Decimal
    ) -> None:
        self.connections = tuple(connections)
        self._by_name = {c.name: c for c in self.connections}
        ordered = [r for r in routes if not r.default] + [r for r in routes if r.default]
        self.routes = tuple(ordered)
        self.fallback_price = fallback_price
        self._candidates = {
            r.name: tuple(self._by_name[n] for n in r.connections) for r in self.routes
        }
        self._prefix_len = max((len(p) for r in self.routes for p in r.prefixes), default=0)
        self._uses_carriers = any(r.carriers for r in self.routes)
        self._decide = functools.lru_cache(maxsize=_CACHE_SIZE)(self._decide_uncached)

    @classmethod
    def from_config(
        cls, config: Config, simulator_address: tuple[str, int] | None = None
    ) -> Router:
        """Check and build from ``config.smsc`` / ``config.routes``; raises ConfigError.

        With no ``[[smsc]]`` the one connection is the simulator at ``simulator_address``
        (port 0 = not started yet; `smpp-bridge run` fills it in, see :func:`with_simulator`).
        With no ``[[route]]`` every number goes to all connections in file order.
        """
        tables = config.smsc
        if not tables:
            host, port = simulator_address or ("127.0.0.1", 0)
            tables = (simulator_table(host, port),)
        connections = _read_connections(tables, placeholder_port=not config.smsc)
        routes = _read_routes(config, connections)
        return cls(connections, routes, config.price_per_part)

    def connection(self, name: str) -> Connection:
        """The connection called ``name``; KeyError names the ones that exist."""
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(
                f"no SMSC connection named {name!r}; configured: {', '.join(self._by_name)}"
            ) from None

    def route(self, e164: str) -> Route | None:
        """The first route matching the number (file order, default last), or None."""
        digits = e164.removeprefix("+")
        return self._decide(digits[: self._key_length(digits)])

    def connections_for(
        self, e164: str, is_up: Callable[[str], bool] = lambda name: True
    ) -> list[Connection]:
        """Connections to try for the number, in order: the route's up ones, then its down ones.

        Empty when no route matches (the worker fails and refunds such a message).
        """
        route = self.route(e164)
        if route is None:
            return []
        candidates = self._candidates[route.name]
        up = [c for c in candidates if is_up(c.name)]
        return up + [c for c in candidates if c not in up]

    def price(self, e164: str) -> Decimal:
        """Price of one SMS part to this number: its route's, or the configured default."""
        route = self.route(e164)
        return self.fallback_price if route is None else route.price_per_part

    def _key_length(self, digits: str) -> int:
        """How many leading digits decide the route (the cache key)."""
        if not self._uses_carriers:
            return self._prefix_len
        return max(self._prefix_len, carriers.deciding_length(digits))

    def _decide_uncached(self, key: str) -> Route | None:
        carrier = _lazy(lambda: carriers.carrier_name(key).casefold())
        for route in self.routes:
            if route.matches(key, carrier):
                return route
        return None


def _lazy(compute: Callable[[], str]) -> Callable[[], str]:
    """A thunk that computes once, on first call (carrier lookups only when a route needs one)."""
    return functools.cache(compute)


def simulator_table(host: str, port: int) -> dict[str, Any]:
    """The ``[[smsc]]`` table of the simulated SMSC that `smpp-bridge run` starts."""
    return {
        "name": SIMULATOR,
        "host": host,
        "port": port,
        "system_id": "bridge",
        "password": "bridge",
        "binds": 2,
        "window": 50,
    }


def with_simulator(config: Config, host: str, port: int) -> Config:
    """``config`` routed to a running simulator when it configures no SMSC, else unchanged."""
    if config.smsc:
        return config
    return config.replace(smsc=(simulator_table(host, port),))


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
    "account",
)
_ROUTE_KEYS = ("name", "prefixes", "carriers", "connections", "price_per_part", "default")


def _read_connections(tables: Iterable[Any], placeholder_port: bool = False) -> list[Connection]:
    connections: list[Connection] = []
    for index, raw in enumerate(tables, 1):
        label = raw.get("name") if isinstance(raw, Mapping) else None
        where = f"[[smsc]] #{index}" + (f" ({label!r})" if isinstance(label, str) else "")
        conn = _read_connection(Table(raw, where, _SMSC_KEYS), placeholder_port)
        if any(c.name == conn.name for c in connections):
            raise ConfigError(
                f"{where}: name {conn.name!r} is used by another [[smsc]]; "
                "connection names must be unique"
            )
        connections.append(conn)
    _check_shared_accounts(connections)
    return connections


def _read_connection(t: Table, placeholder_port: bool) -> Connection:
    binds = t.integer("binds", 1, lo=1, hi=64)
    tps = t.rate("tps")
    return Connection(
        name=t.text("name").strip(),
        host=t.text("host").strip(),
        port=t.integer("port", lo=0 if placeholder_port else 1, hi=65535),
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


def _read_routes(config: Config, connections: list[Connection]) -> list[Route]:
    names = [c.name for c in connections]
    if not config.routes:
        return [
            Route(
                name="default",
                connections=tuple(names),
                price_per_part=config.price_per_part,
                default=True,
            )
        ]
    routes: list[Route] = []
    for index, raw in enumerate(config.routes, 1):
        label = raw.get("name") if isinstance(raw, Mapping) else None
        where = f"[[route]] #{index}" + (f" ({label!r})" if isinstance(label, str) else "")
        route = _read_route(Table(raw, where, _ROUTE_KEYS), config, names)
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
    return routes


def _read_route(t: Table, config: Config, known: list[str]) -> Route:
    name = t.text("name").strip()
    wanted = t.words("connections")
    if not wanted:
        raise t.fail("connections", "a non-empty list of [[smsc]] names", t.raw.get("connections"))
    for conn in wanted:
        if conn not in known:
            raise ConfigError(
                f"{t.where}: connections names {conn!r}, which is not an [[smsc]] "
                f"name; configured: {', '.join(known)}"
            )
    if len(set(wanted)) != len(wanted):
        raise t.fail("connections", "a list without repeats", list(wanted))
    prefixes = tuple(_normalise_prefix(t, p, config.default_region) for p in t.words("prefixes"))
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
        price_per_part=t.money("price_per_part", config.price_per_part),
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
    known = carriers.known_carrier_names()
    if known and folded not in known:
        raise ConfigError(
            f"{t.where}: carrier {name!r} is not in phonenumbers' carrier data; "
            'check the spelling (e.g. "Safaricom", "Airtel", "Telkom")'
        )
    return folded
