"""Where the bot's own web requests (feeds, link previews) may go: public addresses, checked when connecting.

A link an admin pushes is fetched for its title, and the title goes to every liaison group: a link to
http://127.0.0.1:8080/, http://10.0.0.5/, the cloud metadata service at 169.254.169.254, the same in decimal
(http://2130706433/), a public-looking name that resolves inside, or a public page that redirects inside, would
put an internal page's title into the groups (server-side request forgery). So every connection the client
opens resolves its host name, checks each address it got, and connects to exactly the address it checked (no
second lookup a DNS answer could change in between). Redirects are followed by the caller, hop by hop
(feed_fetch.open_get), and each new host is checked when its connection opens.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import typing
from collections.abc import Iterable

import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Not covered by `is_global` in every Python 3.11 (e.g. multicast is "global" there), so refused by name too.
_REFUSED_V4 = [
    ipaddress.ip_network(n)
    for n in ("0.0.0.0/8", "100.64.0.0/10", "169.254.0.0/16", "224.0.0.0/4", "240.0.0.0/4", "255.255.255.255/32")
]
_REFUSED_V6 = [ipaddress.ip_network(n) for n in ("fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8", "::/96")]
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # an IPv4 address in the last 32 bits (RFC 6052)


class DestinationRefused(OSError):
    """The host is, or resolves to, an internal address (loopback, private, link-local, ...) not allowed."""

    def __init__(self, host: str, address: str = "") -> None:
        self.host = host
        self.address = address
        shown = f"{host} ({address})" if address and address != host else host
        super().__init__(f"refused: {shown} is an internal address")


def is_public(address: IPAddress) -> bool:
    """True for an address on the public internet; False for loopback, private (RFC 1918, fc00::/7), link-local
    (169.254/16 with the cloud metadata service, fe80::/10), multicast, unspecified, reserved, shared (100.64/10),
    documentation ranges, and IPv6 forms that carry such an IPv4 address (::ffff:127.0.0.1, 6to4, NAT64)."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return is_public(embedded)
        if address.teredo is not None or any(address in net for net in _REFUSED_V6):
            return False
    elif any(address in net for net in _REFUSED_V4):
        return False
    return address.is_global and not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


class AllowedHosts:
    """Internal destinations allowed all the same: host names (as written in the URL), addresses and networks."""

    def __init__(self, entries: Iterable[str] = ()) -> None:
        self.names: set[str] = set()
        self.networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for entry in entries:
            entry = entry.strip().lower().strip("[]")
            if not entry:
                continue
            try:
                self.networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                self.names.add(entry.rstrip("."))

    def allows(self, host: str, address: IPAddress) -> bool:
        """True when `address` (which `host` resolved to) may be connected to."""
        if host.lower().strip("[]").rstrip(".") in self.names:
            return True
        plain = ipaddress.ip_address(str(address).split("%")[0])  # without an IPv6 scope such as %eth0
        return is_public(plain) or any(plain in net for net in self.networks)


async def checked_addresses(host: str, port: int, allowed: AllowedHosts) -> list[str]:
    """The addresses `host` resolves to, as getaddrinfo reads it (so also 2130706433, 0x7f.1 and 017700000001),
    if every one of them may be connected to; DestinationRefused otherwise (a name with one internal address
    among public ones is refused: it is no use to anyone but an attacker)."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
    except (socket.gaierror, UnicodeError) as exc:
        raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from None
    addresses: list[str] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        text = str(sockaddr[0])
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            raise DestinationRefused(host, text) from None
        if not allowed.allows(host, address):
            raise DestinationRefused(host, text)
        if text not in addresses:
            addresses.append(text)
    if not addresses:
        raise httpcore.ConnectError(f"cannot resolve {host}")
    return addresses


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, but every TCP connection goes to an address checked by checked_addresses."""

    def __init__(self, allowed: AllowedHosts) -> None:
        self.allowed = allowed
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[typing.Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await checked_addresses(host, port, self.allowed)
        # TLS still checks the certificate against `host`: httpcore passes the URL's host name to start_tls.
        for i, address in enumerate(addresses):
            try:
                return await self._inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout):
                if i == len(addresses) - 1:
                    raise
        raise httpcore.ConnectError(f"cannot connect to {host}")  # not reached: addresses is never empty

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[typing.Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise DestinationRefused(path)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport with the guarded network backend (and no proxy: a proxy would resolve hosts itself)."""

    def __init__(self, allowed: AllowedHosts) -> None:
        super().__init__()
        # httpx builds its connection pool without a way to pass a network backend: build it again with one
        # (the same arguments AsyncHTTPTransport uses by default; httpx is pinned in pyproject.toml).
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=_GuardedBackend(allowed),
        )


def guarded_client(allowed: Iterable[str] = ()) -> httpx.AsyncClient:
    """An httpx client that connects only to public addresses, or to internal ones listed in `allowed`."""
    return httpx.AsyncClient(transport=GuardedTransport(AllowedHosts(allowed)))
