"""``client.webhooks``: start a run through an incoming webhook URL."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional
from urllib.parse import quote, unquote, urlsplit

from .._extras import extras_of
from .._loopback import is_loopback_host
from .._redact import Secret
from .._transport import Transport
from ..models.runs import RunCreated
from ._common import check_json_object, has_control_characters
from ._sender import Sender, as_model

__all__ = ["WEBHOOK_DISPLAY_PATH", "Webhooks"]

#: What logs and errors show instead of the webhook URL's path (the token is a secret).
WEBHOOK_DISPLAY_PATH = "/webhooks/runs/***"


_URL_PATHS = ("/webhooks/runs/", "/v1/webhooks/runs/")


def _origin(scheme: str, host: str, port: Optional[int]) -> tuple[str, str, int]:
    return scheme, host.lower().rstrip("."), port or (443 if scheme == "https" else 80)


def _token_from_url(url: str, base_url: str) -> str:
    """The token of a webhook URL ``https://<api host>/webhooks/runs/<token>``, checked
    against the client's ``base_url``. Errors never echo the URL's path (the token)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValueError("the webhook URL is not a valid URL") from None
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host:
        raise ValueError("the webhook URL must be an https:// URL with a host")
    if parts.scheme == "http" and not is_loopback_host(host):
        raise ValueError(
            f"refusing a plain http:// webhook URL to {host}: the token would travel "
            "unencrypted; use the https:// URL"
        )
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ValueError("the webhook URL must not carry credentials, a query or a fragment")
    base = urlsplit(base_url)
    if _origin(parts.scheme, host, port) != _origin(base.scheme, base.hostname or "", base.port):
        raise ValueError(
            f"the webhook URL points at {parts.scheme}://{parts.netloc.rpartition('@')[2]}, "
            f"not at this client's base_url ({base_url}); create the client with "
            "base_url= set to the webhook URL's origin"
        )
    for prefix in _URL_PATHS:
        if parts.path.startswith(prefix):
            token = unquote(parts.path[len(prefix) :])
            break
    else:
        raise ValueError("the webhook URL's path must be /webhooks/runs/<token>")
    if not token or "/" in token:
        raise ValueError("the webhook URL's path must end in one token: /webhooks/runs/<token>")
    return token


def _check_token(token: object, base_url: str) -> str:
    """The token, given alone or inside the webhook URL, checked without ever echoing it
    (it is a credential)."""
    if not isinstance(token, str):
        raise TypeError(f"the webhook token must be a string, got {type(token).__name__}")
    if token != token.strip() or has_control_characters(token):
        raise ValueError("the webhook token contains whitespace or control characters")
    if "://" in token:
        token = _token_from_url(token, base_url)
        if has_control_characters(token):
            raise ValueError("the webhook URL's token contains control characters")
    if token in ("", ".", ".."):
        raise ValueError("the webhook token must be a non-empty string other than '.' and '..'")
    if "/" in token:
        raise ValueError(
            "the webhook token contains '/': pass the token alone or the whole webhook URL"
        )
    return token


class Webhooks:
    """Incoming webhooks. Reached as ``client.webhooks``."""

    def __init__(self, transport: Transport) -> None:
        self._send = Sender(transport)

    async def trigger(
        self,
        token: str,
        input: Optional[Mapping[str, Any]],
        *,
        timeout: Optional[float] = None,
        extra_headers: Optional[Mapping[str, str]] = None,
        extra_query: Optional[Mapping[str, Any]] = None,
    ) -> RunCreated:
        """Start a run through an incoming webhook (``POST /webhooks/runs/{token}``) and
        return its ids.

        ``token`` is the token alone, or the whole webhook URL as Crewship shows it
        (``https://api.crewship.dev/webhooks/runs/<token>``, or ``http://`` to a loopback
        host such as the emulator). A URL must point at this client's ``base_url`` origin
        (scheme, host and port): the call is sent there, so a URL for another host raises
        ``ValueError`` asking for a client with that ``base_url``; it must not carry a
        query, fragment or credentials.

        ``input`` is sent as the body itself, not wrapped (``None`` sends ``{}``). The token
        is the credential: no ``Authorization`` header is sent, and neither logs nor errors
        show the token (the path appears as ``/webhooks/runs/***``; the token is also
        scrubbed from any error text or body that would echo it). The API answers once the
        run has started. Raises ``TypeError``/``ValueError`` before sending for a token that
        is not a non-empty string other than ``.``/``..`` (or holds whitespace, control
        characters or ``/``), for a malformed webhook URL, and for an input that is not a
        JSON object;
        :class:`NotFoundError` for an unknown or revoked token [inferred].
        """
        secret = _check_token(token, self._send.transport.base_url)
        body = check_json_object("input", input)
        extras = extras_of(extra_headers, extra_query)
        encoded = quote(secret, safe="")
        # Registered with the redaction step for the length of the call: no error or log
        # line made meanwhile can show the token, as given or percent-encoded.
        masks = [Secret(secret)] + ([Secret(encoded)] if encoded != secret else [])
        try:
            return await self._send(
                "POST",
                f"/webhooks/runs/{encoded}",
                as_model(RunCreated, "POST", WEBHOOK_DISPLAY_PATH),
                json={} if body is None else body,
                timeout=timeout,
                authenticated=False,
                display_path=WEBHOOK_DISPLAY_PATH,
                extras=extras,
            )
        finally:
            del masks
