"""Request guards of the login pages: the per-IP attempt window and CSRF checks.

CSRF (RFC 6749 §10.12, RFC 9700 §4.7): every form carries ``HMAC-SHA256(k, binding ‖ form)`` where
the binding is the session (or pre-session) cookie, checked in constant time; a POST whose
``Origin`` (else ``Referer``) is not the public origin, or that the browser marks
``Sec-Fetch-Site: cross-site``, is refused before the token is even looked at.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections import deque
from urllib.parse import urlsplit

from starlette.requests import Request

WINDOW = 60.0
ATTEMPTS_PER_WINDOW = 20
_MAX_TRACKED = 100_000        # bound memory under a spray of source addresses


class AttemptWindow:
    """A moving one-minute window of login attempts per client address (per node)."""

    def __init__(self, limit: int = ATTEMPTS_PER_WINDOW, window: float = WINDOW) -> None:
        self.limit, self.window = limit, window
        self._hits: dict[str, deque[float]] = {}

    def hit(self, key: str, now: float | None = None) -> bool:
        """Count an attempt; False when ``key`` already used up its window."""
        now = time.monotonic() if now is None else now
        hits = self._hits.get(key)
        if hits is None:
            if len(self._hits) >= _MAX_TRACKED:
                self._prune(now)
            hits = self._hits[key] = deque()
        while hits and now - hits[0] >= self.window:
            hits.popleft()
        if len(hits) >= self.limit:
            return False
        hits.append(now)
        return True

    def _prune(self, now: float) -> None:
        for key in [k for k, v in self._hits.items() if not v or now - v[-1] >= self.window]:
            del self._hits[key]
        if len(self._hits) >= _MAX_TRACKED:     # still full: forget the oldest half
            for key in list(self._hits)[: _MAX_TRACKED // 2]:
                del self._hits[key]


class Csrf:
    def __init__(self, key: bytes, public_url: str) -> None:
        self._key = key
        self.origin = origin_of(public_url)

    def token(self, binding: str, form: str) -> str:
        return hmac.new(self._key, f"{binding}\0{form}".encode(), hashlib.sha256).hexdigest()

    def valid(self, binding: str | None, form: str, presented: str | None) -> bool:
        if not binding or not presented:
            return False
        return hmac.compare_digest(self.token(binding, form), presented)

    def same_origin(self, request: Request) -> bool:
        """False for a POST another site made the browser send."""
        if request.headers.get("sec-fetch-site", "").lower() == "cross-site":
            return False
        origin = request.headers.get("origin")
        if origin is not None:
            return origin.rstrip("/") == self.origin
        referer = request.headers.get("referer")
        if referer is not None:
            return origin_of(referer) == self.origin
        return True     # neither header (non-browser client): the token alone decides


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of ``url`` (RFC 6454), default ports elided."""
    parts = urlsplit(url)
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        return "null"
    if port is None or (scheme, port) in (("http", 80), ("https", 443)):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"
