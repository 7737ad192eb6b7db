"""How a delivery of an outgoing webhook is signed, in one place.

The signed string and its encoding are not in Crewship's public reference [inferred]: this
module implements the common recipe, ``hex(HMAC_SHA256(secret, f"{timestamp}.{raw_body}"))``
over the raw body bytes, and :func:`signed_payload` is the one function to change should a
real delivery show otherwise.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Iterable
from typing import Optional, Union

__all__ = [
    "DELIVERY_HEADER",
    "EVENT_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "compute_signature",
    "delivery_headers",
    "parse_signatures",
    "signed_payload",
]

EVENT_HEADER = "X-Crewship-Event"
DELIVERY_HEADER = "X-Crewship-Delivery"
TIMESTAMP_HEADER = "X-Crewship-Timestamp"
SIGNATURE_HEADER = "X-Crewship-Signature"

# Labels a signature may carry (``sha256=<hex>``, ``v1=<hex>``); other labelled parts, such
# as a ``t=<timestamp>`` some senders add, are not signatures and are skipped.
_SIGNATURE_LABELS = frozenset({"sha256", "v1"})
_HEX_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_SEPARATORS = re.compile(r"[,;\s]+")


def signed_payload(timestamp: str, body: bytes) -> bytes:
    """The bytes that are signed: ``<timestamp>.<raw body>`` [inferred]."""
    return timestamp.encode("ascii") + b"." + body


def compute_signature(secret: bytes, timestamp: str, body: bytes) -> str:
    """The lowercase hex HMAC-SHA256 of :func:`signed_payload` under ``secret``."""
    return hmac.new(secret, signed_payload(timestamp, body), hashlib.sha256).hexdigest()


def parse_signatures(values: Iterable[str]) -> list[str]:
    """The candidate signatures in one or more ``X-Crewship-Signature`` values, lowercased.

    Accepts a bare hex digest, a ``sha256=`` or ``v1=`` prefix, and several signatures in
    one value separated by commas, semicolons or spaces (a sender rotating its secret signs
    with both). Anything that is not 64 hex digits is not a candidate.
    """
    found: list[str] = []
    for value in values:
        for part in _SEPARATORS.split(value.strip()):
            label, sep, digest = part.partition("=")
            if not sep:
                digest = label
            elif label.strip().lower() not in _SIGNATURE_LABELS:
                continue
            if _HEX_SHA256.fullmatch(digest):
                found.append(digest.lower())
    return found


def delivery_headers(
    body: bytes,
    secret: Union[str, bytes],
    *,
    event: str,
    delivery_id: str,
    timestamp: Optional[int] = None,
) -> dict[str, str]:
    """The headers Crewship sends with a delivery of ``body``, signed with ``secret`` at
    ``timestamp`` (default: now). What the emulator sends; handy to test a receiver."""
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    return {
        "Content-Type": "application/json",
        EVENT_HEADER: event,
        DELIVERY_HEADER: delivery_id,
        TIMESTAMP_HEADER: stamp,
        SIGNATURE_HEADER: "sha256=" + compute_signature(key, stamp, body),
    }
