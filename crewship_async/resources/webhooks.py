"""``client.webhooks``: start a run through an incoming webhook URL."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional
from urllib.parse import quote

from .._convert import structure
from .._transport import Transport
from ..errors import APIError, CrewshipError
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


def _scrub(value: Any, secrets: tuple[str, ...]) -> Any:
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, "***")
        return value
    if isinstance(value, dict):
        return {_scrub(k, secrets): _scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(item, secrets) for item in value]
    return value


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
        path = f"/webhooks/runs/{encoded}"
        try:
            data = await self._transport.request(
                "POST",
                path,
                json={} if body is None else body,
                timeout=timeout,
                authenticated=False,
                display_path=WEBHOOK_DISPLAY_PATH,
            )
        except CrewshipError as exc:
            # The transport shows WEBHOOK_DISPLAY_PATH, but an underlying aiohttp error
            # (e.g. a connection timeout) can quote the full URL, and a server may echo
            # the token: scrub it and drop the chained aiohttp exception (``from None``
            # only hides ``__context__`` from tracebacks; it must go too).
            secrets = (secret, encoded) if encoded != secret else (secret,)
            exc.message = _scrub(exc.message, secrets)
            exc.args = tuple(_scrub(arg, secrets) for arg in exc.args)
            if isinstance(exc, APIError):
                exc.body = _scrub(exc.body, secrets)
            exc.__context__ = None
            raise exc from None
        return structure(data, RunCreated, method="POST", path=WEBHOOK_DISPLAY_PATH)
