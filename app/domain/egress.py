"""Where requests Brisa makes on a user's behalf may go (callbacks): public addresses only,
unless an admin allows more (BRISA_EGRESS_ALLOW). The rules; app/engine/outbound.py applies
them to the address actually connected to, after DNS, without following redirects (as
OWASP's SSRF prevention cheat sheet advises).

Refused: every address that is not globally routable, IPv4-mapped IPv6 unwrapped first:
loopback (127.0.0.0/8, ::1), private (10/8, 172.16/12, 192.168/16, fc00::/7), link-local
and cloud metadata (169.254.0.0/16, fe80::/10), shared (100.64/10), multicast, unspecified
and reserved ranges.
"""

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class Refused(ValueError):
    """The URL may not be requested; the message says why."""


@dataclass(frozen=True)
class Allow:
    """What an admin allows besides public addresses: host names and networks."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[Network, ...] = ()

    @classmethod
    def parse(cls, text: str) -> "Allow":
        """``"hooks.internal, 10.0.0.0/8, 127.0.0.1"``: names and networks (an address is a
        network of one). ValueError for an entry that is neither."""
        hosts, networks = set(), []
        for entry in filter(None, (part.strip() for part in text.split(","))):
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                if not entry.replace("-", "").replace(".", "").isalnum():
                    raise ValueError(f"not a host name or network: {entry!r}") from None
                hosts.add(entry.lower().rstrip("."))
        return cls(frozenset(hosts), tuple(networks))

    def covers(self, address: Address) -> bool:
        return any(address in network for network in self.networks)


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str  # with the query


def parse(url: str) -> Target:
    """The parts of an http(s) URL; Refused for anything else (no scheme, no host, a bad
    port or IPv6 literal, credentials in the URL)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise Refused(f"not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise Refused("must be an http(s) URL")
    if not parts.hostname:
        raise Refused("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise Refused("credentials in the URL are not allowed")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    default = 443 if parts.scheme == "https" else 80
    return Target(parts.scheme, parts.hostname.lower(), port or default, path)


def refusal(address: Address, allow: Allow) -> str | None:
    """Why ``address`` may not be connected to, or None if it may."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if allow.covers(address):
        return None
    for kind in ("unspecified", "loopback", "link_local", "multicast", "reserved", "private"):
        if getattr(address, f"is_{kind}"):  # multicast counts as global in ipaddress
            return f"{address} is a {kind.replace('_', '-')} address"
    return None if address.is_global else f"{address} is not a public address"


def check_literal(url: str, allow: Allow) -> Target:
    """At request time: the URL parses, and a host given as an address is allowed (a name is
    checked when it is resolved, at each connection). Refused otherwise."""
    target = parse(url)
    if target.host in allow.hosts:
        return target
    if target.host == "localhost" or target.host.endswith(".localhost"):  # RFC 6761
        raise Refused(f"refused: {target.host} is a loopback name")
    try:
        address = ipaddress.ip_address(target.host)
    except ValueError:
        return target
    reason = refusal(address, allow)
    if reason:
        raise Refused(f"refused: {reason}")
    return target
