"""``client.with_raw_response``: a call's response before it becomes a model.

``await client.with_raw_response.runs.get(run_id)`` sends the same request as
``client.runs.get(run_id)``, with the same arguments, checks, retries and errors (an error
status still raises its :class:`~crewship_async.errors.APIError`), and returns a
:class:`RawResponse`: status, headers, request id and rate limit at once, the model only
when :meth:`RawResponse.parse` is awaited. A body that does not fit the model raises
:class:`~crewship_async.errors.ResponseError` from ``parse()``, after the headers were
read.

:class:`RawMethod` is how each method of the raw views is declared: it takes the resource
method itself, so the view's method has exactly its parameters (for type checkers too) and
only its return type changes.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Concatenate, Generic, Optional, ParamSpec, TypeVar, cast

from ._metadata import RateLimit, ResponseInfo, attach

__all__ = ["RawMethod", "RawResponse", "raw_method"]

T = TypeVar("T")
R = TypeVar("R")
P = ParamSpec("P")


class RawResponse(Generic[T]):
    """One successful response of a call, and the model it parses into.

    ``status``, ``headers`` (case-insensitive, as the server sent them), ``request_id``,
    ``rate_limit`` and the whole ``response_info`` are read without parsing the body.
    ``await parse()`` gives what the ordinary method returns (its ``response_info``
    attached); it parses once, and later calls return the same object.
    """

    __slots__ = ("_body", "_parse", "_parsed", "response_info")

    def __init__(self, body: Any, info: ResponseInfo, parse: Callable[[Any], T]) -> None:
        self._body = body
        self._parse: Optional[Callable[[Any], T]] = parse
        self._parsed: Optional[T] = None
        self.response_info: ResponseInfo = info

    @property
    def status(self) -> int:
        """The HTTP status code."""
        return self.response_info.status

    @property
    def headers(self) -> Mapping[str, str]:
        """The response headers (read-only, case-insensitive)."""
        return self.response_info.headers

    @property
    def request_id(self) -> Optional[str]:
        """The ``x-request-id`` header, when the server sent one."""
        return self.response_info.request_id

    @property
    def rate_limit(self) -> Optional[RateLimit]:
        """The parsed ``X-RateLimit-*`` headers, when present."""
        return self.response_info.rate_limit

    def json(self) -> Any:
        """The decoded JSON body (``None`` for an empty body), before the model is made."""
        return self._body

    async def parse(self) -> T:
        """The model the ordinary method returns.

        Raises :class:`~crewship_async.errors.ResponseError` when the body does not fit it.
        """
        parse = self._parse
        if parse is None:
            return self._parsed  # type: ignore[return-value]  # parsed before
        parsed = parse(self._body)
        attach(parsed, self.response_info)
        self._parsed, self._parse = parsed, None
        return parsed

    def __repr__(self) -> str:
        info = self.response_info
        return f"<RawResponse {info.operation} {info.status} request_id={info.request_id!r}>"


class RawMethod(Generic[R, P, T]):
    """A raw view's method: the resource method ``method``, called on the view's resource
    in raw mode, typed as returning :class:`RawResponse` of what it returns."""

    def __init__(self, method: Callable[Concatenate[R, P], Awaitable[T]], doc: str) -> None:
        self._method = method
        self.__doc__ = doc

    def __get__(
        self, view: Any, owner: Optional[type] = None
    ) -> Callable[P, Awaitable[RawResponse[T]]]:
        if view is None:
            return self  # type: ignore[return-value]  # looked up on the class
        # The view's resource sends in raw mode, so the method returns a RawResponse.
        bound = functools.partial(self._method, view._resource)
        return cast(Callable[P, Awaitable[RawResponse[T]]], bound)


def raw_method(
    method: Callable[Concatenate[R, P], Awaitable[T]],
) -> Callable[[Callable[[Any], None]], RawMethod[R, P, T]]:
    """Declare a raw view's method as the raw form of ``method``; the decorated function
    only carries the docstring (its body is never run)."""

    def declare(holder: Callable[[Any], None]) -> RawMethod[R, P, T]:
        return RawMethod(method, holder.__doc__ or "")

    return declare
