"""Which proxy, if any, a client's requests go through.

Decided once, when the client is made, for its base URL:

1. ``proxy=`` given: that proxy, for every request (``proxy=None`` with ``trust_env=False``:
   direct).
2. Else, with ``trust_env`` (the default): the standard library's reading of
   ``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY`` (lower case first, as curl does) for the
   base URL's scheme, unless ``NO_PROXY`` names its host. A loopback host (the emulator, a
   local gateway) always goes direct, whatever the environment says.
3. Else direct.

The session the client makes never reads the environment itself (see
:class:`~crewship_async._transport._session.SessionOwner` for why). For an ``https`` API the
proxy is asked for a ``CONNECT`` tunnel and sees only ciphertext; for plain ``http`` it
sees the request, key included, which is why plain http to a non-loopback host needs
``allow_insecure_http``. Proxy credentials are registered with the redaction step and never
shown: :func:`display_proxy` masks them.
"""

from __future__ import annotations

import urllib.request
from typing import Optional
from urllib.parse import urlsplit, urlunsplit

from ._loopback import is_localhost_name, is_loopback_host
from ._redact import MASK, Secret

__all__ = ["ProxyChoice", "choose_proxy", "display_proxy"]

_PROXY_SCHEMES = ("http", "https")


class ProxyChoice:
    """The proxy URL requests use (``None``: direct) and the secrets it holds."""

    __slots__ = ("_secrets", "url")

    def __init__(self, url: Optional[str]) -> None:
        self.url = url
        self._secrets: tuple[Secret, ...] = ()
        if url is not None:
            parts = urlsplit(url)
            self._secrets = tuple(
                Secret(value) for value in (parts.password, parts.username) if value
            )

    def __repr__(self) -> str:
        return f"<ProxyChoice {display_proxy(self.url)}>"


def check_proxy_url(value: object, source: str) -> str:
    """``value`` as a proxy URL; ``TypeError``/``ValueError`` saying what is wrong."""
    if not isinstance(value, str):
        raise TypeError(f"{source} must be a URL string, got {type(value).__name__}")
    if any(c in value for c in "\r\n\0\t "):
        raise ValueError(f"{source} contains whitespace or control characters")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{source} is not a valid URL ({exc})") from None
    del port
    if parts.scheme.lower() not in _PROXY_SCHEMES or not parts.hostname:
        raise ValueError(
            f"{source} must be an http:// or https:// URL with a host, got {display_proxy(value)!r}"
        )
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"{source} must not have a path, query or fragment")
    return value


def display_proxy(url: Optional[str]) -> str:
    """The proxy URL with its user and password masked (``direct`` for none)."""
    if url is None:
        return "direct"
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return MASK
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    if parts.username or parts.password:
        netloc = f"{MASK}@{netloc}"
    return urlunsplit((parts.scheme, netloc, "", "", ""))


def _is_loopback(host: str) -> bool:
    return is_loopback_host(host) or is_localhost_name(host)


def choose_proxy(base_url: str, *, proxy: Optional[str], trust_env: bool) -> ProxyChoice:
    """The proxy for requests to ``base_url`` (see the module docstring for the rules).

    Raises ``ValueError`` when ``proxy=`` or the environment's proxy for the base URL's
    scheme is not an http(s) URL with a host: a malformed ``HTTPS_PROXY`` is an error at
    construction, not a baffling connection failure later.
    """
    if proxy is not None:
        return ProxyChoice(check_proxy_url(proxy, "proxy"))
    if not trust_env:
        return ProxyChoice(None)
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    if _is_loopback(host):
        return ProxyChoice(None)
    found = urllib.request.getproxies_environment()
    chosen = found.get(parts.scheme) or found.get("all")
    if not chosen:
        return ProxyChoice(None)
    # Not in typeshed, but part of urllib.request since Python 2: NO_PROXY's matching.
    if urllib.request.proxy_bypass_environment(host, found):  # type: ignore[attr-defined]
        return ProxyChoice(None)
    if "://" not in chosen:
        # "proxy.internal:3128", as many environments write it.
        chosen = f"http://{chosen}"
    return ProxyChoice(check_proxy_url(chosen, f"the {parts.scheme}_proxy environment variable"))
