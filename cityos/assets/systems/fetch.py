"""Outgoing HTTP requests to external systems, guarded against server-side request forgery.

A registered system makes CityOS send requests to a URL someone chose, exactly like a
subscription's notification endpoint, so the same policy applies (the notification block's
:class:`EndpointPolicy`, settings ``CITYOS_NOTIFICATION_ALLOW`` / ``_DENY``): the URL is checked
when the system is registered and every host name is resolved and checked again before each
request.  Redirects are not followed (they could lead past the check) and answers are capped.
"""

from __future__ import annotations

from typing import Any

import httpx

from cityos.core.problems import BadRequestData
from cityos.data.ngsild.notify import EndpointPolicy

MAX_BYTES = 64 * 1024 * 1024
TIMEOUT = 30.0


class PullError(Exception):
    """A pull failed; the message is shown as the system's ``lastError``."""


class Fetcher:
    """GETs with the SSRF policy applied, a timeout and a size cap."""

    def __init__(self, policy: EndpointPolicy, client: httpx.AsyncClient | None = None) -> None:
        self.policy = policy
        self.client = client or httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False,
                                                  trust_env=False)

    async def close(self) -> None:
        """Release the connection pool."""
        await self.client.aclose()

    async def get(self, url: str, params: dict[str, Any] | None = None,
                  headers: dict[str, str] | None = None) -> httpx.Response:
        """One checked GET; ``PullError`` for refusals, network failures and non-2xx answers."""
        try:
            await self.policy.check_resolved(url)
        except BadRequestData as refused:
            raise PullError(refused.detail.replace("Notifications may not be sent to",
                                                   "CityOS may not pull from")) from None
        except OSError as exc:
            raise PullError(f"cannot resolve {url}: {exc}") from None
        try:
            async with self.client.stream("GET", url, params=params, headers=headers) as response:
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > MAX_BYTES:
                        raise PullError(f"{url} answered more than {MAX_BYTES // 2**20} MiB")
                    chunks.append(chunk)
        except httpx.HTTPError as exc:
            raise PullError(f"GET {url} failed: {type(exc).__name__} {exc}"[:300]) from None
        body = b"".join(chunks)
        if not 200 <= response.status_code < 300:
            raise PullError(f"GET {response.request.url} answered HTTP {response.status_code}: "
                            f"{body[:200].decode('utf-8', 'replace')}")
        return httpx.Response(response.status_code, headers=response.headers, content=body,
                              request=response.request)

    async def get_json(self, url: str, params: dict[str, Any] | None = None,
                       headers: dict[str, str] | None = None) -> tuple[Any, httpx.Response]:
        """A checked GET whose body must be JSON."""
        response = await self.get(url, params, headers)
        try:
            return response.json(), response
        except ValueError:
            raise PullError(f"{url} did not answer JSON") from None
