"""Routing: which SMSC connections a number goes to, and what one part to it costs.

:meth:`Router.from_config` takes the ``[[smsc]]`` and ``[[route]]`` tables that
:func:`bridge.config.load_config` already read and checked (:class:`Connection`,
:class:`Route`). A :class:`Router` then answers, for an E.164 number, which route applies
(first match in file order, the default route last), which connections to try (the route's
primary first, failover after, connections that are down last) and what one SMS part costs. The
accept path calls :meth:`Router.price` once per recipient, so decisions are cached by the number
prefix that decides them. With no ``[[smsc]]`` at all the router sends everything to the
simulated SMSC (:data:`SIMULATOR`), which ``smpp-bridge run`` starts.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from decimal import Decimal

from bridge.config import SIMULATOR, Config, Connection, Route, simulator_connection
from bridge.routing import carriers

__all__ = ["SIMULATOR", "Connection", "Route", "Router", "with_simulator"]

_CACHE_SIZE = 65_536  # routing decisions kept, one per deciding number prefix


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
        """The router of ``config``'s (already checked) connections and routes.

        With no ``[[smsc]]`` the one connection is the simulator at ``simulator_address``
        (port 0 = not started yet; `smpp-bridge run` fills it in, see :func:`with_simulator`).
        With no ``[[route]]`` every number goes to all connections in file order.
        """
        connections = config.smsc or (
            simulator_connection(*(simulator_address or ("127.0.0.1", 0))),
        )
        routes = config.routes or (
            Route(name="default", connections=tuple(c.name for c in connections), default=True),
        )
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
        if route is None or route.price_per_part is None:
            return self.fallback_price
        return route.price_per_part

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


def with_simulator(config: Config, host: str, port: int) -> Config:
    """``config`` routed to a running simulator when it configures no SMSC, else unchanged."""
    if config.smsc:
        return config
    return config.replace(smsc=(simulator_connection(host, port),))
