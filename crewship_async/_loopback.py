"""Which hosts count as loopback, and a resolver that keeps ``*.localhost`` on this machine.

Plain ``http://`` is allowed without ``allow_insecure_http`` only to loopback, because the
API key then travels in clear text. An IP literal is checked as it is. A ``localhost`` name
(``localhost`` and, per RFC 6761 section 6.3, every ``*.localhost``) would normally be
handed to the system resolver, which may send ``*.localhost`` on to a DNS server and get any
address back: :class:`LoopbackResolver`, installed in the session the client creates,
answers those names itself with ``127.0.0.1`` and ``::1`` and asks the system for nothing.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Optional

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

__all__ = ["LoopbackResolver", "is_localhost_name", "is_loopback_host"]

_LOOPBACK_ADDRESSES = ((socket.AF_INET6, "::1"), (socket.AF_INET, "127.0.0.1"))


def is_localhost_name(host: str) -> bool:
    """Whether ``host`` is ``localhost`` or a name under it (case-insensitive, trailing
    dot allowed)."""
    name = host.lower().rstrip(".")
    return name == "localhost" or name.endswith(".localhost")


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` is a loopback IP literal or a ``localhost`` name."""
    if is_localhost_name(host):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class LoopbackResolver(AbstractResolver):
    """Resolves ``localhost`` names to loopback without asking anyone; every other name
    goes to aiohttp's default resolver."""

    def __init__(self) -> None:
        self._default: Optional[AbstractResolver] = None

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if not is_localhost_name(host):
            if self._default is None:
                self._default = aiohttp.DefaultResolver()
            return await self._default.resolve(host, port, family)
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=address_family,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address_family, address in _LOOPBACK_ADDRESSES
            if family in (socket.AF_UNSPEC, address_family)
        ]

    async def close(self) -> None:
        if self._default is not None:
            await self._default.close()
