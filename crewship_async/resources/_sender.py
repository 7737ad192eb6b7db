"""How a resource sends one API call and makes its result.

Every single-request method of the resources ends in :class:`Sender`: the transport sends
the call (retries, deadline, errors), then the body becomes the method's result through
the ``parse`` function the method gives, and the response's
:class:`~crewship_async.ResponseInfo` is attached to the model (or to each model of a
list). A sender in raw mode (in the resources behind ``client.with_raw_response``,
made by :func:`raw_twin`) returns a
:class:`~crewship_async.RawResponse` holding the body and ``parse`` instead, so the model
is made only when its ``parse()`` is awaited; the raw views declare their methods as
returning it, which is why the cast below is sound.
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Optional, Protocol, TypeVar, cast

from .._convert import structure, structure_list
from .._extras import NO_EXTRAS, Extras
from .._metadata import attach
from .._raw import RawResponse
from .._transport import Transport

__all__ = ["Sender", "as_list_of", "as_model", "as_nothing", "page_fetcher", "raw_twin"]

T = TypeVar("T")


def as_model(cls: type[T], method: str, path: str) -> Callable[[Any], T]:
    """The parse function of a method returning one ``cls``."""

    def parse(data: Any) -> T:
        return structure(data, cls, method=method, path=path)

    return parse


def as_list_of(key: str, cls: type[T], method: str, path: str) -> Callable[[Any], list[T]]:
    """The parse function of a page of ``cls`` found under ``key``."""

    def parse(data: Any) -> list[T]:
        return structure_list(data, key, cls, method=method, path=path)

    return parse


def as_nothing(data: Any) -> None:
    """The parse function of a method returning nothing (the body is ignored)."""


class Sender:
    """Sends a resource's calls through ``transport``; ``raw``: see the module."""

    __slots__ = ("raw", "transport")

    def __init__(self, transport: Transport, *, raw: bool = False) -> None:
        self.transport = transport
        self.raw = raw

    async def __call__(
        self,
        method: str,
        path: str,
        parse: Callable[[Any], T],
        *,
        extras: Extras = NO_EXTRAS,
        params: Optional[Mapping[str, Any]] = None,
        json: Any = None,
        timeout: Optional[float] = None,
        authenticated: bool = True,
        display_path: Optional[str] = None,
        retry_rate_limits: bool = True,
    ) -> T:
        """Send the call and return ``parse(body)`` with its response metadata attached.

        Raises what :meth:`Transport.call` raises, then what ``parse`` raises.
        """
        reply = await self.transport.call(
            method,
            path,
            params=extras.params(params),
            json=json,
            timeout=timeout,
            authenticated=authenticated,
            display_path=display_path,
            retry_rate_limits=retry_rate_limits,
            extra_headers=extras.headers,
        )
        if self.raw:
            return cast(T, RawResponse(reply.body, reply.info, parse))
        value = parse(reply.body)
        if isinstance(value, list):
            for item in value:
                attach(item, reply.info)
        else:
            attach(value, reply.info)
        return value


class _SendsThroughSender(Protocol):
    _send: Sender


Resource = TypeVar("Resource", bound=_SendsThroughSender)


def page_fetcher(
    send: Sender,
    path: str,
    parse: Callable[[Any], list[T]],
    *,
    timeout: Optional[float],
    extras: Extras,
    filters: Optional[Mapping[str, Any]] = None,
) -> Callable[[int, int], Awaitable[list[T]]]:
    """The ``fetch(offset, size)`` of a listing's pager: ``GET path`` with the listing's
    ``filters``, ``limit`` and ``offset``, each page parsed by ``parse``."""
    base = dict(filters or {})

    async def fetch(offset: int, size: int) -> list[T]:
        params = {**base, "limit": size, "offset": offset}
        return await send("GET", path, parse, params=params, timeout=timeout, extras=extras)

    return fetch


def raw_twin(resource: Resource) -> Resource:
    """A copy of ``resource`` whose own calls are raw; the resources it uses (a thread's
    runs poll the thread through the plain ``threads``) stay as they are."""
    twin = copy.copy(resource)
    twin._send = Sender(resource._send.transport, raw=True)
    return twin
