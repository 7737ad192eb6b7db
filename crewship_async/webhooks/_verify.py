"""verify(): check a delivery of an outgoing webhook and decode it into a WebhookEvent."""

from __future__ import annotations

import hmac
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Optional, Union

from .. import _json
from .._convert import structure
from ..errors import ResponseError, WebhookVerificationError
from ..models.runs import Run
from ._event import WebhookEvent, event_type
from ._signature import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    compute_signature,
    parse_signatures,
)

__all__ = [
    "DEFAULT_TOLERANCE",
    "SecretInput",
    "check_tolerance",
    "header_values",
    "signing_keys",
    "verify",
]

#: How far (seconds) a delivery's timestamp may be from the receiver's clock, either way.
DEFAULT_TOLERANCE = 300.0
#: One signing secret, or several (current and previous, while rotating).
SecretInput = Union[str, bytes, Iterable[Union[str, bytes]]]

# Top-level payload fields that describe the delivery rather than the run [inferred].
_ENVELOPE_FIELDS = frozenset({"event", "type", "delivery_id", "timestamp"})
_STATUS_OF_EVENT = {"run.succeeded": "succeeded", "run.failed": "failed"}
_MAX_TIMESTAMP_DIGITS = 12
_WHERE = "webhook delivery"


def signing_keys(secret: SecretInput) -> tuple[bytes, ...]:
    """The secret(s) as HMAC keys; ``TypeError``/``ValueError`` (never quoting a secret)
    for anything but non-empty strings or bytes."""
    items = [secret] if isinstance(secret, (str, bytes)) else list(secret)
    keys: list[bytes] = []
    for item in items:
        if isinstance(item, str):
            item = item.encode("utf-8")
        if not isinstance(item, bytes):
            raise TypeError(f"a webhook secret must be str or bytes, got {type(item).__name__}")
        if not item:
            raise ValueError("a webhook secret must not be empty")
        keys.append(item)
    if not keys:
        raise ValueError("at least one webhook secret is needed")
    return tuple(keys)


def check_tolerance(tolerance: object) -> float:
    """``tolerance`` as seconds; ``ValueError`` unless it is a number >= 0."""
    if (
        isinstance(tolerance, bool)
        or not isinstance(tolerance, (int, float))
        or not (tolerance >= 0)
    ):
        raise ValueError(f"tolerance must be a number of seconds >= 0, got {tolerance!r}")
    return float(tolerance)


def header_values(headers: Mapping[str, str], name: str) -> list[str]:
    """Every value of header ``name`` (case-insensitive) in a plain mapping, an aiohttp
    ``CIMultiDict`` or Starlette ``Headers``."""
    for many in ("getall", "getlist"):
        getter = getattr(headers, many, None)
        if getter is not None:
            try:
                return [str(v) for v in getter(name)]
            except KeyError:
                return []
    wanted = name.lower()
    return [str(v) for k, v in headers.items() if k.lower() == wanted]


def _one_header(headers: Mapping[str, str], name: str) -> str:
    values = header_values(headers, name)
    if not values or not values[0].strip():
        raise WebhookVerificationError(f"the {name} header is missing", reason="missing_header")
    return values[0].strip()


def _check_timestamp(text: str, tolerance: float, now: float) -> datetime:
    if not text.isascii() or not text.isdigit() or len(text) > _MAX_TIMESTAMP_DIGITS:
        raise WebhookVerificationError(
            f"the {TIMESTAMP_HEADER} header is not a Unix time in seconds",
            reason="bad_timestamp",
        )
    signed_at = int(text)
    if now - signed_at > tolerance:
        raise WebhookVerificationError(
            f"the delivery was signed {now - signed_at:.0f}s ago, more than the "
            f"{tolerance:g}s tolerance (a replay, or a clock out of step)",
            reason="timestamp_too_old",
        )
    if signed_at - now > tolerance:
        raise WebhookVerificationError(
            f"the delivery's timestamp is {signed_at - now:.0f}s in the future, more than "
            f"the {tolerance:g}s tolerance (check this machine's clock)",
            reason="timestamp_in_future",
        )
    return datetime.fromtimestamp(signed_at, tz=UTC)


def _check_signature(
    headers: Mapping[str, str], keys: tuple[bytes, ...], timestamp: str, body: bytes
) -> None:
    values = header_values(headers, SIGNATURE_HEADER)
    if not any(value.strip() for value in values):
        raise WebhookVerificationError(
            f"the {SIGNATURE_HEADER} header is missing", reason="missing_header"
        )
    candidates = parse_signatures(values)
    expected = [compute_signature(key, timestamp, body) for key in keys]
    matched = False
    # Every pair is compared, in constant time each, so the time taken does not say which
    # secret or which candidate came close.
    for candidate in candidates:
        for digest in expected:
            matched |= hmac.compare_digest(candidate, digest)
    if not matched:
        raise WebhookVerificationError(
            "the signature does not match the body and timestamp under the given secret(s)"
            if candidates
            else f"the {SIGNATURE_HEADER} header holds no HMAC-SHA256 hex signature",
            reason="bad_signature",
        )


def _decode(body: bytes) -> dict[str, Any]:
    try:
        document = _json.loads(body)
    except _json.JSONDecodeError:
        raise WebhookVerificationError(
            "the body is not valid UTF-8 JSON", reason="not_json"
        ) from None
    if not isinstance(document, dict):
        raise WebhookVerificationError(
            f"the body is JSON but not an object (got {type(document).__name__})",
            reason="not_json",
        )
    return document


def _signed_field(
    document: Mapping[str, Any], names: tuple[str, ...], header: str, given: str
) -> None:
    """Refuse a header that contradicts the signed body (headers are not signed)."""
    for name in names:
        value = document.get(name)
        if isinstance(value, str) and value != given:
            raise WebhookVerificationError(
                f"the {header} header does not match the signed body's {name!r}",
                reason="bad_payload",
            )


def _run_of(document: Mapping[str, Any], kind: str) -> tuple[Run, dict[str, Any]]:
    """The run described by the payload, and the payload's other fields [inferred shape:
    the run's fields under ``run`` or ``data``, or at the top level]."""
    container = next(
        (name for name in ("run", "data") if isinstance(document.get(name), dict)), None
    )
    if container is not None:
        fields = dict(document[container])
        extra = {k: v for k, v in document.items() if k != container and k not in _ENVELOPE_FIELDS}
    else:
        fields = {k: v for k, v in document.items() if k not in _ENVELOPE_FIELDS}
        extra = {}
    if "id" not in fields and isinstance(fields.get("run_id"), str):
        fields["id"] = fields.pop("run_id")
    if "status" not in fields and kind in _STATUS_OF_EVENT:
        fields["status"] = _STATUS_OF_EVENT[kind]
    try:
        run = structure(fields, Run, method="POST", path=_WHERE)
    except ResponseError as exc:
        raise WebhookVerificationError(str(exc), reason="bad_payload") from None
    return run, extra


def verify(
    body: bytes,
    headers: Mapping[str, str],
    secret: SecretInput,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    now: Optional[float] = None,
) -> WebhookEvent:
    """Check a delivery of an outgoing webhook and return it as a :class:`WebhookEvent`.

    ``body`` is the request body exactly as received (bytes: never re-serialised JSON);
    ``headers`` the request headers (any mapping; names are matched case-insensitively);
    ``secret`` the deployment webhook's signing secret, or several (an iterable) while
    rotating: a delivery signed with any of them passes.

    Checks, in order: the ``X-Crewship-Event``, ``X-Crewship-Delivery`` and
    ``X-Crewship-Timestamp`` headers are present; the timestamp is within ``tolerance``
    seconds of ``now`` (default: this machine's clock) either way; one of the signatures in
    ``X-Crewship-Signature`` (bare hex, ``sha256=`` or ``v1=``, several allowed) equals
    ``hex(HMAC_SHA256(secret, f"{timestamp}.{body}"))`` [inferred recipe], compared in
    constant time; the body is a JSON object describing a run whose ``event`` and
    ``delivery_id`` fields, when present, agree with the (unsigned) headers.

    Raises :class:`~crewship_async.WebhookVerificationError` (its ``reason`` says which
    check failed) and nothing else for a bad delivery; ``TypeError``/``ValueError`` only
    for a bad ``secret``/``tolerance`` argument. No message quotes a secret or the body.
    """
    keys = signing_keys(secret)
    allowed = check_tolerance(tolerance)
    if not isinstance(body, (bytes, bytearray, memoryview)):
        raise TypeError(f"body must be the raw request bytes, got {type(body).__name__}")
    raw = bytes(body)
    kind = _one_header(headers, EVENT_HEADER)
    delivery_id = _one_header(headers, DELIVERY_HEADER)
    stamp = _one_header(headers, TIMESTAMP_HEADER)
    signed_at = _check_timestamp(stamp, allowed, time.time() if now is None else now)
    _check_signature(headers, keys, stamp, raw)
    document = _decode(raw)
    _signed_field(document, ("event", "type"), EVENT_HEADER, kind)
    _signed_field(document, ("delivery_id",), DELIVERY_HEADER, delivery_id)
    run, extra = _run_of(document, kind)
    return WebhookEvent(
        type=event_type(kind),
        delivery_id=delivery_id,
        timestamp=signed_at,
        run=run,
        extra=extra,
        body=raw,
    )
