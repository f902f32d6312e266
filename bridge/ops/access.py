"""Who may read the operator's pages: the operator token, or (for ``/metrics``) an address on
an allow-list. One place, so every operator endpoint checks the same way.

The token is ``operator_token`` (``BRIDGE_OPERATOR_TOKEN``), sent as ``Authorization: Bearer
<token>`` and compared in constant time; a customer API key is never enough. Pure functions
over strings: the API passes the header and the TCP peer address (proxy headers are trusted
from nobody, as for the rate limit).
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterable


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def token_matches(configured: str | None, authorization: str | None) -> bool:
    """True when a token is configured and the header carries exactly it."""
    given = bearer_token(authorization)
    if not configured or given is None:
        return False
    return hmac.compare_digest(given.encode(), configured.encode())


def networks(raw: Iterable[str]) -> tuple[ipaddress._BaseNetwork, ...]:
    """Parsed CIDRs of a checked setting (Config normalises metrics_allow_networks)."""
    return tuple(ipaddress.ip_network(item, strict=False) for item in raw)


def address_allowed(address: str | None, allowed: Iterable[ipaddress._BaseNetwork]) -> bool:
    """True when ``address`` (an IPv4/IPv6 peer address, IPv4-mapped IPv6 included) is in
    one of ``allowed``."""
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip.version == net.version and ip in net for net in allowed)
