"""Which callback URLs the bridge may POST to: the SSRF rules, in one place.

A callback target must be http or https, and every address its host resolves to must be a
public unicast address, unless an operator allow-list (``webhook_allow_networks``) names it.
Refused: loopback, private (RFC 1918, fc00::/7), link-local (169.254.0.0/16 with the cloud
metadata address, fe80::/10), multicast, reserved, unspecified, shared (100.64.0.0/10) and the
IPv6 forms of those (IPv4-mapped and 6to4/NAT64 addresses are judged by the IPv4 inside).

The sender calls :func:`resolve_target` at every delivery and connects to the address it
checked (the IP is pinned, Host and SNI keep the name), so a name that later resolves inward
cannot get through. The API calls :func:`check_target` when a send names a callback_url.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# host, port -> the addresses it resolves to (tests inject one; default: getaddrinfo)
Resolver = Callable[[str, int], Sequence[str]]

_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT, not "private" to Python
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# one DNS label of a host name, in its ASCII (IDNA) form; "_" is allowed as resolvers allow it
_LABEL = re.compile(r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?")


class TargetError(ValueError):
    """The callback URL cannot be used; the message says why and what to do."""


class TargetRefused(TargetError):
    """The URL is malformed, not http(s), or its host is (or resolves to) a forbidden address."""


class TargetUnresolvable(TargetError):
    """The host name did not resolve (DNS failure): possibly temporary, so the sender retries."""


@dataclass(frozen=True)
class Target:
    """A checked callback target: connect to ``addresses[0]``, send Host/SNI ``host``."""

    scheme: str  # "http" or "https"
    host: str  # the name (or literal) from the URL, lower case, no brackets
    port: int
    path: str  # path and query to request, at least "/"
    addresses: tuple[str, ...]  # every address the host resolved to, all allowed

    @property
    def endpoint(self) -> str:
        """scheme://host:port: the unit of concurrency caps and backoff."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


def parse_networks(spec: str | Iterable[str]) -> tuple[Network, ...]:
    """CIDRs from a comma-separated string or an iterable; TargetError naming a bad one."""
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    networks = []
    for item in items:
        item = str(item).strip()
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise TargetError(
                f"webhook_allow_networks: {item!r} is not a CIDR (e.g. 10.1.0.0/16 or ::1/128)"
            ) from None
    return tuple(networks)


def check_target(
    url: str, allow: str | Iterable[str] | Sequence[Network] = (), resolver: Resolver | None = None
) -> None:
    """None if ``url`` may be POSTed to now; raises TargetRefused or TargetUnresolvable."""
    resolve_target(url, allow, resolver)


def resolve_target(
    url: str, allow: str | Iterable[str] | Sequence[Network] = (), resolver: Resolver | None = None
) -> Target:
    """Parse ``url``, resolve its host and check every address; the Target to connect to."""
    scheme, host, port, path = _split(url)
    networks = _networks(allow)
    literal = _literal(host)
    if literal is not None:
        addresses: Sequence[str] = [str(literal)]
    else:
        _check_name(host)
        try:
            addresses = (resolver or _getaddrinfo)(host, port)
        except OSError as exc:
            raise TargetUnresolvable(
                f"callback host {host!r} does not resolve ({exc}); check the name"
            ) from None
        if not addresses:
            raise TargetUnresolvable(f"callback host {host!r} resolves to no address")
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        reason = forbidden_reason(ip)
        if reason and not any(ip in net for net in networks if ip.version == net.version):
            shown = host if literal is not None else f"{host} ({ip})"
            raise TargetRefused(
                f"callback_url host {shown} is not a public address ({reason}), and webhooks "
                "may not reach it; use a public address, or ask the operator to allow the "
                "network in webhook_allow_networks"
            )
    return Target(scheme, host, port, path, tuple(addresses))


def forbidden_reason(ip: IPAddress) -> str | None:
    """Why ``ip`` is not a public unicast address ("loopback", "private", ...), or None."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = ip.ipv4_mapped or ip.sixtofour
        if inner is None and ip in _NAT64:
            inner = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if inner is not None:
            return forbidden_reason(inner)
    for reason, test in (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
        ("shared (carrier NAT)", ip in _SHARED),
        ("non-global", not ip.is_global),
    ):
        if test:
            return reason
    return None


def _split(url: str) -> tuple[str, str, int, str]:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise TargetRefused(f"callback_url is not a valid URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise TargetRefused(f"callback_url must be an http or https URL, got {scheme or 'none'!r}")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise TargetRefused("callback_url has no host")
    if parts.username is not None or parts.password is not None:
        raise TargetRefused("callback_url may not carry a user name or password")
    if port == 0:  # urlsplit reads ":0" as a port; it is none a server listens on
        raise TargetRefused("callback_url is not a valid URL (port 0); give a port from 1 to 65535")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return scheme, host, port or (443 if scheme == "https" else 80), path


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:  # inet_aton's forms: "2130706433", "0x7f.1", "127.1" all mean 127.0.0.1
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def _check_name(host: str) -> None:
    """TargetRefused unless ``host`` is a DNS name (IDNA allowed): a name with a space or
    another character no resolver answers for would be retried until the retry period ends."""
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        ascii_host = ""  # an empty or over-long label
    labels = ascii_host.split(".")
    if len(ascii_host) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise TargetRefused(
            f"callback_url host {host!r} is not a valid host name (letters, digits and hyphens "
            "between dots, at most 63 in a row)"
        )


def _networks(allow: str | Iterable[str] | Sequence[Network]) -> tuple[Network, ...]:
    items = list(allow) if not isinstance(allow, str) else [allow]
    if all(isinstance(n, ipaddress.IPv4Network | ipaddress.IPv6Network) for n in items):
        return tuple(items)  # type: ignore[arg-type]
    return parse_networks(allow if isinstance(allow, str) else [str(n) for n in items])


def _getaddrinfo(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    seen: list[str] = []
    for *_, sockaddr in infos:
        if sockaddr[0] not in seen:
            seen.append(str(sockaddr[0]))
    return seen


def endpoint_of(url: str) -> str:
    """``scheme://host:port`` of a URL without resolving it, or "" if it is not http(s)."""
    try:
        scheme, host, port, _ = _split(url)
    except TargetRefused:
        return ""
    return Target(scheme, host, port, "/", ()).endpoint
