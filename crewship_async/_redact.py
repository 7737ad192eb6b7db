"""The one step that server text goes through before it becomes SDK text.

A server, or a gateway in front of it, may echo the request it received, ``Authorization:
Bearer <key>`` included, in any text it sends back: an error message, an HTML page, a
header value, an event. Every such text reaches the user only as the text of a
:class:`~crewship_async.errors.CrewshipError` (whose constructor calls :func:`scrub`) or of
a log record of the ``crewship_async`` logger (whose :class:`RedactingFilter` calls it).

:func:`scrub` replaces, by value, every secret in use in the process (each client's API key
and each incoming-webhook token while its call runs) with ``***``: the whole secret, and any
run of 8 or more of its characters in a row, so a secret cut short by the server's own
truncation is not recognisable either. It also escapes the control characters a hostile
server could use to rewrite a terminal (ESC, CR, NUL, ...; newline and tab stay) and lone
surrogates, so that any message can be printed and logged.
"""

from __future__ import annotations

import logging
import re
import weakref
from typing import Any

__all__ = ["MASK", "RedactingFilter", "Secret", "cut_chain", "scrub", "scrub_value"]

MASK = "***"
#: A run of this many characters of a secret, or more, is redacted wherever it appears.
MIN_FRAGMENT = 8

_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


class Secret:
    """A value that must never appear in SDK text while this object is alive.

    The owner keeps a reference (a client's transport for its key, a webhook call for its
    token); once it is garbage the value is no longer searched for. ``repr`` never shows it.
    """

    __slots__ = ("__weakref__", "_fragments", "_whole", "value")

    def __init__(self, value: str) -> None:
        self.value = value
        self._fragments = tuple(
            (start, value[start : start + MIN_FRAGMENT])
            for start in range(len(value) - MIN_FRAGMENT + 1)
        )
        # A secret too short to have fragments is masked only where it stands alone, not
        # inside every longer word that happens to contain it.
        self._whole = (
            None if self._fragments else re.compile(rf"(?<![\w-]){re.escape(value)}(?![\w-])")
        )
        if value:
            _LIVE.add(self)

    def __repr__(self) -> str:
        return "<Secret ***>"

    def __reduce__(self) -> Any:
        raise TypeError("a crewship_async secret cannot be pickled")

    def spans(self, text: str) -> list[tuple[int, int]]:
        """The ``[start, end)`` ranges of ``text`` that hold a fragment of the secret."""
        if self._whole is not None:
            return [match.span() for match in self._whole.finditer(text)]
        value = self.value
        found: list[tuple[int, int]] = []
        for offset, fragment in self._fragments:
            at = text.find(fragment)
            while at != -1:
                # Grow the match both ways while text and secret still agree.
                start, left = at, offset
                while start > 0 and left > 0 and text[start - 1] == value[left - 1]:
                    start -= 1
                    left -= 1
                end, right = at + len(fragment), offset + len(fragment)
                while end < len(text) and right < len(value) and text[end] == value[right]:
                    end += 1
                    right += 1
                found.append((start, end))
                at = text.find(fragment, at + 1)
        return found


_LIVE: weakref.WeakSet[Secret] = weakref.WeakSet()


def scrub(text: str) -> str:
    """``text`` with every live secret (or fragment of one) masked and control characters
    escaped."""
    if not text:
        return text
    spans: list[tuple[int, int]] = []
    for secret in list(_LIVE):
        spans.extend(secret.spans(text))
    if spans:
        spans.sort()
        merged = [list(spans[0])]
        for start, end in spans[1:]:
            if start <= merged[-1][1]:  # overlapping or touching: one mask
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        pieces: list[str] = []
        position = 0
        for start, end in merged:
            pieces.append(text[position:start])
            pieces.append(MASK)
            position = end
        pieces.append(text[position:])
        text = "".join(pieces)
    if _UNPRINTABLE.search(text):
        text = _UNPRINTABLE.sub(_escape, text)
    return text


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def scrub_value(value: Any) -> Any:
    """``value`` (decoded JSON, or any attribute of an error) with :func:`scrub` applied to
    every string in it, keys included; other objects are returned as they are."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {scrub_value(k): scrub_value(v) for k, v in value.items()}
    if type(value) is list:
        return [scrub_value(item) for item in value]
    if type(value) is tuple:
        return tuple(scrub_value(item) for item in value)
    return value


def cut_chain(error: BaseException) -> None:
    """Drop every exception of another library from ``error``'s cause/context chain.

    Foreign exceptions may quote raw server bytes or hold the request (aiohttp's
    ``request_info`` carries the ``Authorization`` header); the SDK's own errors already
    name the foreign error's type and its scrubbed text. The SDK's errors in the chain stay.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        cause, context = current.__cause__, current.__context__
        if cause is not None and not _is_own(cause):
            current.__cause__ = None
            cause = None
        if context is not None and not _is_own(context):
            current.__context__ = None
            context = None
        if cause is not None or context is not None:
            current.__suppress_context__ = cause is not None
        current = cause if cause is not None else context


def _is_own(error: BaseException) -> bool:
    from .errors import CrewshipError

    return isinstance(error, CrewshipError)


class RedactingFilter(logging.Filter):
    """Applies :func:`scrub` to every record of the logger it is attached to.

    Attached to the ``crewship_async`` logger at import, so that no log line of the SDK,
    DEBUG included, can carry a secret, whatever its arguments hold.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = scrub(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            # The formatted traceback would quote the exception's text: keep only its
            # scrubbed one-line description.
            error = record.exc_info[1]
            record.msg = f"{record.msg} ({type(error).__name__}: {scrub(str(error))})"
            record.exc_info = None
            record.exc_text = None
        return True


logging.getLogger("crewship_async").addFilter(RedactingFilter())
