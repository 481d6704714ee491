"""Where notifications may go: the SSRF guard for subscription endpoints.

A subscription makes the broker send requests to a URI a caller chose, so without a guard anyone
allowed to subscribe could make CityOS reach services that only it can see (the database, cloud
metadata at 169.254.169.254, an admin port on localhost).  :class:`EndpointPolicy` is checked
twice:

* :meth:`EndpointPolicy.check` when a subscription is created or changed: scheme, host, port and,
  for literal addresses and host names, the allow and deny lists.  Errors are 400 BadRequestData.
* :meth:`EndpointPolicy.check_resolved` before every delivery: the host name is resolved and every
  address it resolves to is checked, because a name that pointed to a public address at
  subscription time may point to 127.0.0.1 later (DNS rebinding).

Lists come from ``CITYOS_NOTIFICATION_ALLOW`` and ``CITYOS_NOTIFICATION_DENY``: comma-separated
host names (``receiver.example.jp``, or ``*.example.jp`` for every name below it), addresses or
CIDR networks.  The deny entry ``private`` stands for every address that is not a public unicast
one (loopback, link-local, private, CGNAT, multicast, reserved, unspecified, IPv6 ULA ...).  The
allow list wins over the deny list, so ``CITYOS_NOTIFICATION_ALLOW=127.0.0.1`` lets a test or a
sidecar receiver on the same machine through while ``private`` stays denied.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urlsplit

from cityos.core.problems import BadRequestData

SCHEMES = frozenset({"http", "https", "mqtt", "mqtts"})
DEFAULT_PORTS = {"http": 80, "https": 443, "mqtt": 1883, "mqtts": 8883}

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Not covered by ``is_global`` / ``is_private`` in every Python version, so named explicitly.
_EXTRA_NON_PUBLIC: tuple[IPNetwork, ...] = tuple(ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "100.64.0.0/10", "192.0.0.0/24", "198.18.0.0/15", "224.0.0.0/4", "240.0.0.0/4",
    "255.255.255.255/32", "64:ff9b:1::/48", "100::/64", "2001:db8::/32", "fc00::/7",
    "fe80::/10", "fec0::/10", "ff00::/8",
))
# Legacy IPv4 spellings (``127.1``, ``0x7f.0.0.1``, ``2130706433``) that resolvers accept.
_LEGACY_IPV4 = re.compile(r"[0-9a-fA-FxX.]+")


def is_private_address(ip: IPAddress) -> bool:
    """True for every address that is not public unicast (the meaning of deny ``private``)."""
    for embedded in _embedded_ipv4(ip):
        if is_private_address(embedded):
            return True
    return (not ip.is_global or ip.is_private or ip.is_loopback or ip.is_link_local
            or ip.is_multicast or ip.is_reserved or ip.is_unspecified
            or any(ip.version == n.version and ip in n for n in _EXTRA_NON_PUBLIC))


def _embedded_ipv4(ip: IPAddress) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address carries (mapped, 6to4, Teredo): they are where it goes."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return []
    out = [a for a in (ip.ipv4_mapped, ip.sixtofour) if a is not None]
    if ip.teredo is not None:
        out.extend(ip.teredo)
    return out


def parse_address(host: str) -> IPAddress | None:
    """``host`` as an IP address when it is one (including legacy IPv4 forms), else ``None``."""
    host = host.strip("[]").split("%", 1)[0]          # IPv6 zone ids do not change the address
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        if not _LEGACY_IPV4.fullmatch(host):
            return None
        try:
            ip = ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


@dataclass(frozen=True)
class _HostList:
    """One parsed list setting: names, name suffixes, networks and the ``private`` flag."""

    names: frozenset[str]
    suffixes: tuple[str, ...]            # "*.example.jp" -> ".example.jp"
    networks: tuple[IPNetwork, ...]
    private: bool

    @classmethod
    def parse(cls, value: str, setting: str, *, allow_private: bool) -> _HostList:
        names: set[str] = set()
        suffixes: list[str] = []
        networks: list[IPNetwork] = []
        private = False
        for raw in value.split(","):
            entry = raw.strip().lower()
            if not entry:
                continue
            if entry == "private" and allow_private:
                private = True
            elif entry.startswith("*."):
                suffixes.append(entry[1:])
            elif (ip := parse_address(entry)) is not None:
                networks.append(ipaddress.ip_network(ip))
            elif "/" in entry:
                try:
                    networks.append(ipaddress.ip_network(entry, strict=False))
                except ValueError as exc:
                    raise ValueError(f"{setting}: {entry!r} is not a CIDR network") from exc
            else:
                names.add(entry.rstrip("."))
        return cls(frozenset(names), tuple(suffixes), tuple(networks), private)

    def has_name(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        return host in self.names or any(host.endswith(s) for s in self.suffixes)

    def has_address(self, ip: IPAddress) -> bool:
        if any(ip.version == n.version and ip in n for n in self.networks):
            return True
        return self.private and is_private_address(ip)


class EndpointPolicy:
    """Decides whether a notification endpoint URI may be used."""

    def __init__(self, allow: str = "", deny: str = "private") -> None:
        self.allow = _HostList.parse(allow, "CITYOS_NOTIFICATION_ALLOW", allow_private=False)
        self.deny = _HostList.parse(deny, "CITYOS_NOTIFICATION_DENY", allow_private=True)

    @classmethod
    def from_settings(cls, settings: Any) -> EndpointPolicy:
        """The policy of ``settings.notification_allow`` / ``settings.notification_deny``."""
        return cls(settings.notification_allow, settings.notification_deny)

    # -- static checks (subscription create / update) ----------------------------------------
    def check(self, uri: str) -> None:
        """Raise BadRequestData unless ``uri`` is a usable, permitted endpoint."""
        parts = self._split(uri)
        host = parts.hostname or ""
        if self.allow.has_name(host):
            return
        ip = parse_address(host)
        if ip is not None:
            self._check_address(host, ip)
            return
        if self.deny.has_name(host):
            raise self._denied(host, f"the host name {host!r} is on the deny list")
        if self.deny.private and _is_local_name(host):
            raise self._denied(host, f"{host!r} names this machine (loopback)")

    def _split(self, uri: str) -> SplitResult:
        try:
            parts = urlsplit(uri)
        except ValueError as exc:
            raise BadRequestData(f"Endpoint URI {uri!r} is not a valid URI: {exc}") from exc
        scheme = parts.scheme.lower()
        if scheme not in SCHEMES:
            raise BadRequestData(
                f"Endpoint URI {uri!r}: scheme {parts.scheme or '(none)'!r} is not supported; "
                "use http, https, mqtt or mqtts")
        if not parts.hostname:
            raise BadRequestData(f"Endpoint URI {uri!r} has no host")
        try:
            port = parts.port
        except ValueError as exc:
            raise BadRequestData(f"Endpoint URI {uri!r} has a malformed port") from exc
        if port == 0:
            raise BadRequestData(f"Endpoint URI {uri!r}: port 0 is not a valid port")
        if scheme.startswith("mqtt"):
            topic = parts.path.lstrip("/")
            if "#" in uri or "+" in topic:      # urlsplit would take "#..." for a fragment
                raise BadRequestData(f"Endpoint URI {uri!r}: an MQTT topic to publish to may not "
                                     "contain the wildcards '+' or '#'")
            if not topic:
                raise BadRequestData(f"Endpoint URI {uri!r} names no MQTT topic "
                                     "(mqtt://host:port/topic)")
        return parts

    def _check_address(self, host: str, ip: IPAddress, resolved_from: str | None = None) -> None:
        if self.allow.has_address(ip) or not self.deny.has_address(ip):
            return
        what = f"{resolved_from!r} resolves to {ip}" if resolved_from else f"the address {ip}"
        listed = any(ip.version == n.version and ip in n for n in self.deny.networks)
        kind = "on the deny list" if listed else "a private or reserved address"
        raise self._denied(resolved_from or str(ip), f"{what}, which is {kind}")

    @staticmethod
    def _denied(host: str, why: str) -> BadRequestData:
        return BadRequestData(
            f"Notifications may not be sent to {host}: {why}. An operator can permit it with "
            f"CITYOS_NOTIFICATION_ALLOW (e.g. CITYOS_NOTIFICATION_ALLOW={host})")

    # -- delivery-time check -----------------------------------------------------------------
    async def resolve(self, uri: str) -> list[str]:
        """Check ``uri`` and every address its host resolves to; return those addresses.

        Raises BadRequestData when the endpoint is refused and OSError when the name does not
        resolve (a delivery failure worth retrying, unlike a refusal).
        """
        self.check(uri)
        parts = urlsplit(uri)
        host = parts.hostname or ""
        ip = parse_address(host)
        if ip is not None:
            return [str(ip)]
        port = parts.port or DEFAULT_PORTS[parts.scheme.lower()]
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
        addresses = _unique(str(info[4][0]) for info in infos)
        if not addresses:
            raise OSError(f"{host} resolves to no address")
        if self.allow.has_name(host):
            return addresses
        for address in addresses:
            resolved = parse_address(address)
            if resolved is not None:
                self._check_address(host, resolved, resolved_from=host)
        return addresses

    async def check_resolved(self, uri: str) -> None:
        """Like :meth:`check`, and also check every address the host name resolves to."""
        await self.resolve(uri)


def _is_local_name(host: str) -> bool:
    """``localhost`` and names below it always mean loopback (RFC 6761)."""
    host = host.lower().rstrip(".")
    return host == "localhost" or host.endswith(".localhost")


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))
