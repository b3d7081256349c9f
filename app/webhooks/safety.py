"""Server-side request forgery checks for webhook URLs.

A webhook URL is chosen by an App Server, so without a check it could make Parley call
its own network: the database, a cloud metadata address, a router. Private, loopback,
link-local, multicast and reserved addresses are refused unless the operator allows
them (PARLEY_WEBHOOK_ALLOW_PRIVATE, for tests and closed networks). The check runs at
registration and again before every request, since DNS answers can change.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from app.errors import InvalidRequest


def _unsafe(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def parse(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidRequest("A webhook URL is http(s)://host[:port]/path.", code="invalid_url")
    if parts.username or parts.password:
        raise InvalidRequest("A webhook URL may not carry a user or password.",
                             code="invalid_url")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise InvalidRequest("The URL's port is not a number.", code="invalid_url") from exc
    return parts.hostname, port


async def check(url: str, allow_private: bool) -> None:
    """Refuse a URL whose host resolves to an address Parley must not call."""
    host, port = parse(url)
    if allow_private:
        return
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port,
                                                              type=socket.SOCK_STREAM)
    except OSError as exc:
        raise InvalidRequest("The webhook host does not resolve.", code="invalid_url") from exc
    if any(_unsafe(str(info[4][0])) for info in infos):
        raise InvalidRequest(
            "The webhook URL points at a private, loopback or link-local address.",
            code="url_not_allowed",
        )
