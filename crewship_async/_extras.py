"""Headers and query parameters added to one call: ``extra_headers=`` and ``extra_query=``.

Every resource method takes them (a gateway's routing header, a tenant tag, a query flag
the SDK does not know yet). They are checked when the method is called, before anything is
sent, by the same rules as the client's ``default_headers``:

* a header name or value that is not a ``str`` raises ``TypeError``; one holding CR, LF or
  NUL (or a name holding ``:``) raises ``ValueError``, so no header can be smuggled in;
* headers the SDK must set itself are refused with ``ValueError``: ``Authorization`` (the
  key, which the redaction step knows, comes from ``api_key=``) and the framing headers
  ``Content-Type``, ``Content-Length``, ``Transfer-Encoding`` and ``Host``;
* a query value must be a ``str``, ``int`` or ``float`` (``bool`` refused: the API has no
  spelling for it), and a query name the method sets itself (``limit``, ``offset``, a
  filter) is refused, so paging and filters stay the SDK's.

Extra headers override the client's ``default_headers`` for that call.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, Optional

__all__ = ["NO_EXTRAS", "Extras", "check_headers", "extras_of"]

_RESERVED_FOR_CALLS = frozenset(
    {"authorization", "content-type", "content-length", "transfer-encoding", "host"}
)
_RESERVED_FOR_DEFAULTS = frozenset({"authorization"})


def _check_header(argument: str, name: object, value: object, reserved: frozenset[str]) -> None:
    if not isinstance(name, str) or not isinstance(value, str):
        raise TypeError(f"{argument} must map str to str, got {name!r}: {type(value).__name__}")
    if any(c in name for c in "\r\n\0:") or any(c in value for c in "\r\n\0"):
        raise ValueError(f"header {name!r} contains a CR, LF, NUL or ':' character; refused")
    lowered = name.lower()
    if lowered == "authorization" and lowered in reserved:
        raise ValueError("set the API key with api_key=, not an Authorization header")
    if lowered in reserved:
        raise ValueError(f"{argument} cannot set {name!r}: the SDK sets it for each request")


def check_headers(argument: str, headers: object, *, for_calls: bool = False) -> dict[str, str]:
    """``headers`` as a new dict after the checks above (``{}`` for ``None``).

    ``for_calls`` applies the per-call reserved names; without it only ``Authorization`` is
    refused (the rule of the client's ``default_headers``).
    """
    if headers is None:
        return {}
    if not isinstance(headers, Mapping):
        raise TypeError(f"{argument} must be a mapping of str to str")
    reserved = _RESERVED_FOR_CALLS if for_calls else _RESERVED_FOR_DEFAULTS
    checked: dict[str, str] = dict(headers)
    for name, value in checked.items():
        _check_header(argument, name, value, reserved)
    return checked


def _check_query(query: object, own: Collection[str]) -> dict[str, Any]:
    if query is None:
        return {}
    if not isinstance(query, Mapping):
        raise TypeError("extra_query must be a mapping of str to str, int or float")
    checked: dict[str, Any] = dict(query)
    for name, value in checked.items():
        if not isinstance(name, str) or not name:
            raise TypeError(f"extra_query names must be non-empty strings, got {name!r}")
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise TypeError(
                f"extra_query[{name!r}] must be a str, int or float, got {type(value).__name__}"
            )
        if name in own:
            raise ValueError(
                f"extra_query cannot set {name!r}: this method sets it (pass it as an argument)"
            )
    return checked


class Extras:
    """The checked extra headers and query parameters of one call."""

    __slots__ = ("headers", "query")

    def __init__(self, headers: dict[str, str], query: dict[str, Any]) -> None:
        self.headers: Optional[dict[str, str]] = headers or None
        self.query: dict[str, Any] = query

    def params(self, own: Optional[Mapping[str, Any]]) -> Optional[Mapping[str, Any]]:
        """The method's own query parameters with the extra ones added."""
        if not self.query:
            return own
        return {**(own or {}), **self.query}


NO_EXTRAS = Extras({}, {})


def extras_of(
    extra_headers: Optional[Mapping[str, str]],
    extra_query: Optional[Mapping[str, Any]] = None,
    *,
    own_query: Collection[str] = (),
) -> Extras:
    """Check a method's ``extra_headers`` and ``extra_query`` (see the module's rules).

    ``own_query``: the query names the method sets itself. Raises ``TypeError`` or
    ``ValueError`` naming what is wrong.
    """
    if extra_headers is None and extra_query is None:
        return NO_EXTRAS
    return Extras(
        check_headers("extra_headers", extra_headers, for_calls=True),
        _check_query(extra_query, own_query),
    )
