"""``client.webhooks``: start a run through an incoming webhook URL."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional
from urllib.parse import quote

from .._convert import structure
from .._redact import Secret
from .._transport import Transport
from ..models.runs import RunCreated
from ._common import check_json_object

__all__ = ["WEBHOOK_DISPLAY_PATH", "Webhooks"]

#: What logs and errors show instead of the webhook URL's path (the token is a secret).
WEBHOOK_DISPLAY_PATH = "/webhooks/runs/***"


def _check_token(token: object) -> str:
    """The token, checked without ever echoing it (it is a credential)."""
    if not isinstance(token, str):
        raise TypeError(f"the webhook token must be a string, got {type(token).__name__}")
    if token in ("", ".", ".."):
        raise ValueError("the webhook token must be a non-empty string other than '.' and '..'")
    if token != token.strip() or any(ord(c) < 0x20 or c == "\x7f" for c in token):
        raise ValueError("the webhook token contains whitespace or control characters")
    if "/" in token:
        raise ValueError(
            "the webhook token contains '/': pass the token alone, not the webhook URL"
        )
    return token


class Webhooks:
    """Incoming webhooks. Reached as ``client.webhooks``."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    async def trigger(
        self,
        token: str,
        input: Optional[Mapping[str, Any]],
        *,
        timeout: Optional[float] = None,
    ) -> RunCreated:
        """Start a run through the incoming webhook ``token``
        (``POST /webhooks/runs/{token}``) and return its ids.

        ``input`` is sent as the body itself, not wrapped (``None`` sends ``{}``). The token
        is the credential: no ``Authorization`` header is sent, and neither logs nor errors
        show the token (the path appears as ``/webhooks/runs/***``; the token is also
        scrubbed from any error text or body that would echo it). The API answers once the
        run has started. Raises ``TypeError``/``ValueError`` before sending for a token that
        is not a non-empty string other than ``.``/``..`` (or holds whitespace, control
        characters or ``/``), and for an input that is not a JSON object;
        :class:`NotFoundError` for an unknown or revoked token [inferred].
        """
        secret = _check_token(token)
        body = check_json_object("input", input)
        encoded = quote(secret, safe="")
        # Registered with the redaction step for the length of the call: no error or log
        # line made meanwhile can show the token, as given or percent-encoded.
        masks = [Secret(secret)] + ([Secret(encoded)] if encoded != secret else [])
        try:
            data = await self._transport.request(
                "POST",
                f"/webhooks/runs/{encoded}",
                json={} if body is None else body,
                timeout=timeout,
                authenticated=False,
                display_path=WEBHOOK_DISPLAY_PATH,
            )
            return structure(data, RunCreated, method="POST", path=WEBHOOK_DISPLAY_PATH)
        finally:
            del masks
