"""``@context`` resolution: the shipped core context, remote contexts with a cache, stored ones.

The core context ships inside the package and every published URL of it is recognised without a
network (ETSI GS CIM 009 clause 5.5.7); user contexts given by URL are fetched once with a timeout,
then cached.  Contexts stored through ``/jsonldContexts`` and the demo's preloaded contexts are found
before any fetch.
"""

from __future__ import annotations

import json
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import lru_cache
from importlib import resources
from typing import Any

import httpx
import orjson

from cityos.core.problems import BadRequestData, InvalidRequest, LdContextNotAvailable
from cityos.data.ngsild.terms import TermMap, build_term_map

CORE_CONTEXT_URL = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"
# Every published name of the core context: unversioned and v1.3 .. v1.9, http or https.
_CORE_URL = re.compile(r"^https?://uri\.etsi\.org/ngsi-ld/v1/ngsi-ld-core-context(-v1\.\d+)?\.jsonld$")
MAX_NESTING = 8
MAX_CONTEXT_BYTES = 1_000_000

StoredLookup = Callable[[str], Awaitable[Any | None]]
# the path under which /jsonldContexts serves a hosted context, whatever host the caller used
HOSTED_PREFIX = "/ngsi-ld/v1/jsonldContexts/"
_HOSTED = re.compile(r"^(?:https?://[^/]+)?(/ngsi-ld/v1/jsonldContexts/[^/?#]+)$")


def is_core_url(url: str) -> bool:
    """True when ``url`` names (some version of) the NGSI-LD core context."""
    return bool(_CORE_URL.match(url))


def hosted_path(url: str) -> str | None:
    """``/ngsi-ld/v1/jsonldContexts/{id}`` when ``url`` names a context hosted by a broker.

    Hosted contexts are stored under this path rather than an absolute URL, because the host a
    caller reaches the broker by (localhost, a container name, a public proxy) is not known to it.
    """
    match = _HOSTED.match(url)
    return match.group(1) if match else None


@lru_cache(maxsize=1)
def core_context_document() -> dict[str, Any]:
    """The shipped core context document, as parsed JSON."""
    text = resources.files("cityos.data.ngsild").joinpath(
        "contexts/ngsi-ld-core-context-v1.8.jsonld").read_text(encoding="utf-8")
    doc: dict[str, Any] = json.loads(text)
    return doc


def core_context_object() -> dict[str, Any]:
    """The inner ``@context`` object of the core context."""
    inner: dict[str, Any] = core_context_document()["@context"]
    return inner


class ContextResolver:
    """Turns the ``@context`` of a request into a :class:`TermMap`, caching on the way."""

    def __init__(self, *, fetch_timeout: float = 5.0, cache_size: int = 512,
                 cache_ttl: float = 3600.0, allow_fetch: bool = True) -> None:
        self.fetch_timeout = fetch_timeout
        self.cache_ttl = cache_ttl
        self.allow_fetch = allow_fetch
        self._documents: OrderedDict[str, tuple[float, Any]] = OrderedDict()
        self._fetched_at: dict[str, str] = {}  # url -> wall-clock time of the (last) fetch
        self.started_at = _utc_now()
        self._preloaded: dict[str, Any] = {}
        self._term_maps: OrderedDict[str, TermMap] = OrderedDict()
        self._cache_size = cache_size
        self.stored_lookup: StoredLookup | None = None

    def preload(self, url: str, document: Any) -> None:
        """Make ``url`` resolve to ``document`` without fetching (demo data, tests, offline sites)."""
        self._preloaded[url] = document

    def forget(self, url: str) -> None:
        """Drop a cached remote document (``DELETE /jsonldContexts/{id}``)."""
        self._documents.pop(url, None)
        self._fetched_at.pop(url, None)
        self._term_maps.clear()

    async def reload(self, url: str) -> None:
        """Fetch a cached remote document again now (``reload=true``); 503 when it cannot be."""
        document = await self._fetch(url)
        self._documents[url] = (time.monotonic(), document)
        self._fetched_at[url] = _utc_now()
        self._term_maps.clear()

    def cached_urls(self) -> list[str]:
        """URLs of every remote context currently cached."""
        return list(self._documents)

    def cached_document(self, url: str) -> tuple[Any, str] | None:
        """A cached remote document and when it was fetched, or ``None``."""
        hit = self._documents.get(url)
        if hit is None:
            return None
        return hit[1], self._fetched_at.get(url, self.started_at)

    async def term_map(self, context: Any) -> TermMap:
        """The term map for a ``@context`` value (URL, object or list of them); ``None`` = core."""
        if context is None:
            from cityos.data.ngsild.terms import core_only

            return core_only()
        key = context if isinstance(context, str) else orjson.dumps(context).decode()
        cached = self._term_maps.get(key)
        if cached is not None:
            self._term_maps.move_to_end(key)
            return cached
        objects: list[dict[str, Any]] = []
        await self._flatten(context, objects, 0)
        term_map = build_term_map(objects, core_context_object())
        self._term_maps[key] = term_map
        if len(self._term_maps) > self._cache_size:
            self._term_maps.popitem(last=False)
        return term_map

    async def _flatten(self, context: Any, out: list[dict[str, Any]], depth: int) -> None:
        if depth > MAX_NESTING:
            raise InvalidRequest("@context nests remote contexts more than 8 levels deep")
        if context is None:
            return
        if isinstance(context, list):
            for item in context:
                await self._flatten(item, out, depth + 1)
        elif isinstance(context, str):
            if is_core_url(context):
                return  # the core context is always merged last by build_term_map
            document = await self.document(context)
            inner = document.get("@context") if isinstance(document, dict) else None
            if inner is None:
                raise InvalidRequest(f"the document at {context} has no @context member")
            await self._flatten(inner, out, depth + 1)
        elif isinstance(context, dict):
            nested = context.get("@import")
            if isinstance(nested, str):
                await self._flatten(nested, out, depth + 1)
            out.append(context)
        else:
            raise BadRequestData("@context must be a URL string, an object or an array of them")

    async def document(self, url: str) -> Any:
        """The JSON document at ``url``: preloaded, stored, cached, or fetched now."""
        if is_core_url(url):
            return core_context_document()
        if url in self._preloaded:
            return self._preloaded[url]
        if self.stored_lookup is not None:
            path = hosted_path(url)
            stored = await self.stored_lookup(path) if path is not None else None
            if stored is None:
                stored = await self.stored_lookup(url)
            if stored is not None:
                return stored
        hit = self._documents.get(url)
        now = time.monotonic()
        if hit is not None and now - hit[0] < self.cache_ttl:
            return hit[1]
        try:
            document = await self._fetch(url)
        except LdContextNotAvailable:
            if hit is not None:
                return hit[1]  # an expired copy beats failing every request while it is down
            raise
        self._documents[url] = (now, document)
        self._fetched_at[url] = _utc_now()
        if len(self._documents) > self._cache_size:
            oldest, _ = self._documents.popitem(last=False)
            self._fetched_at.pop(oldest, None)
        return document

    async def _fetch(self, url: str) -> Any:
        if not url.startswith(("http://", "https://")):
            raise BadRequestData(f"@context URL {url!r} is not an http(s) URL")
        if not self.allow_fetch:
            raise LdContextNotAvailable(f"fetching remote @context {url} is disabled on this server")
        try:
            async with httpx.AsyncClient(timeout=self.fetch_timeout, follow_redirects=True) as client:
                response = await client.get(url, headers={"Accept": "application/ld+json, application/json"})
        except httpx.HTTPError as exc:
            raise LdContextNotAvailable(f"@context {url} could not be fetched: {type(exc).__name__}") from exc
        if response.status_code != 200:
            raise LdContextNotAvailable(f"@context {url} answered HTTP {response.status_code}")
        if len(response.content) > MAX_CONTEXT_BYTES:
            raise LdContextNotAvailable(f"@context {url} is larger than {MAX_CONTEXT_BYTES} bytes")
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            raise LdContextNotAvailable(f"@context {url} is not valid JSON") from exc


def _utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_link_header(value: str | None) -> str | None:
    """The context URL of a ``Link: <url>; rel="http://www.w3.org/ns/json-ld#context"`` header."""
    if not value:
        return None
    for part in value.split(","):
        part = part.strip()
        if not part.startswith("<") or ">" not in part:
            raise BadRequestData("the Link header is not of the form <url>; rel=...")
        url, _, params = part[1:].partition(">")
        if "json-ld#context" in params:
            if not url:
                raise BadRequestData("the Link header names an empty @context URL")
            return url
    return None


def link_header(url: str) -> str:
    """The ``Link`` header value that names ``url`` as the JSON-LD context of a response."""
    return f'<{url}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'
