"""Where prepared entities go: the local broker's batch upsert, or a remote server's.

Both write in chunks with ``/entityOperations/upsert`` semantics (``options=replace``): a new id
is created, an existing one replaced by the row, so importing the same file twice leaves the same
entities with the same values (only ``modifiedAt`` moves on).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from cityos.data.ngsild import Broker, TermMap, batch_upsert, utc_now
from cityos.ingest.importers.jp_datasets import CONTEXT_ID, CONTEXT_PATH, context_document
from cityos.ingest.importers.report import ImportReport, Rejection
from cityos.ingest.importers.sources import Prepared

Progress = Callable[[int, int], None]
LINK_REL = 'rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'


@dataclass
class ChunkResult:
    """What one chunk did: ids created, and failed ids with their reasons."""

    created: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)


class Sink(Protocol):
    """Something prepared entities can be written to."""

    async def use_context(self, context: Any) -> str | None:
        """Make ``context`` usable by the target; the URL entities are written under."""

    async def write(self, entities: list[dict[str, Any]]) -> ChunkResult:
        """Upsert one chunk."""


def _reason(error: Any) -> str:
    if isinstance(error, dict):
        return str(error.get("detail") or error.get("title") or error)[:300]
    return str(error)[:300]


class BrokerSink:
    """Writes through the broker's batch-upsert action (the CLI's ``--database``, the HTTP API)."""

    def __init__(self, broker: Broker, tenant: str = "") -> None:
        self.broker = broker
        self.tenant = tenant
        self.term_map: TermMap | None = None

    async def use_context(self, context: Any) -> str | None:
        """Host the recommended-dataset context in this tenant; resolve any other context."""
        if context == CONTEXT_PATH:
            document = context_document()
            await self.broker.store.put_context(self.tenant, CONTEXT_ID, CONTEXT_PATH, "Hosted",
                                                document, utc_now())
            self.term_map = await self.broker.resolver.term_map(document["@context"])
            return CONTEXT_PATH
        self.term_map = await self.broker.resolver.term_map(context)
        return context if isinstance(context, str) else None

    async def write(self, entities: list[dict[str, Any]]) -> ChunkResult:
        """One batch upsert; per-entity errors come back as reasons."""
        term_map = self.term_map or await self.broker.resolver.term_map(None)

        async def term_map_for(_item_context: Any) -> TermMap:
            return term_map

        result = await batch_upsert(self.broker, self.tenant, entities, term_map_for, replace=True)
        return ChunkResult(created=result.created,
                           errors={e["entityId"]: _reason(e["error"]) for e in result.errors})


class HttpSink:
    """POSTs chunks to a running CityOS (or any NGSI-LD broker) at ``base_url``."""

    def __init__(self, client: httpx.AsyncClient, base_url: str, tenant: str = "") -> None:
        self.client = client
        self.base = base_url.rstrip("/")
        self.headers = {"Content-Type": "application/json"}
        if tenant:
            self.headers["NGSILD-Tenant"] = tenant

    async def use_context(self, context: Any) -> str | None:
        """Host the dataset context on the server (``POST /jsonldContexts``) and link to it."""
        url: str | None = context if isinstance(context, str) else None
        if context == CONTEXT_PATH or isinstance(context, dict):
            document = context_document() if context == CONTEXT_PATH else context
            response = await self.client.post(f"{self.base}/ngsi-ld/v1/jsonldContexts",
                                              json=document, headers=self.headers)
            if response.status_code != 201:
                raise RuntimeError(f"the server refused the @context: HTTP {response.status_code} "
                                   f"{response.text[:200]}")
            location = response.headers["location"]
            url = self.base + location if location.startswith("/") else location
        if url:
            self.headers["Link"] = f"<{url}>; {LINK_REL}"
        return url

    async def write(self, entities: list[dict[str, Any]]) -> ChunkResult:
        """One ``POST /ngsi-ld/v1/entityOperations/upsert``; a refused chunk fails every entity."""
        response = await self.client.post(f"{self.base}/ngsi-ld/v1/entityOperations/upsert",
                                          json=entities, headers=self.headers)
        if response.status_code == 201:
            return ChunkResult(created=list(response.json()))
        if response.status_code == 204:
            return ChunkResult()
        if response.status_code == 207:
            body = response.json()
            return ChunkResult(errors={e["entityId"]: _reason(e.get("error"))
                                       for e in body.get("errors", [])})
        try:
            why = _reason(response.json())
        except ValueError:
            why = response.text[:200]
        reason = f"the server answered HTTP {response.status_code}: {why}"
        return ChunkResult(errors={e["id"]: reason for e in entities})


async def run_import(prepared: Prepared, sink: Sink, chunk_size: int = 500,
                     progress: Progress | None = None, in_flight: int = 1) -> ImportReport:
    """Write ``prepared`` to ``sink`` in chunks; return the finished report.

    With ``in_flight`` > 1 several chunks are written at once (ids are unique across chunks, so
    order does not matter); measured with SQLite it gains nothing, as the store's single writer
    is the bottleneck, hence the default 1 (and progress reported in file order).
    """
    started = time.perf_counter()
    report = prepared.report
    report.context = await sink.use_context(prepared.mapping.context)
    total = len(prepared.entities)
    done = 0
    gate = asyncio.Semaphore(max(1, in_flight))

    async def write(chunk: list[tuple[int, dict[str, Any]]]) -> None:
        nonlocal done
        async with gate:
            result = await sink.write([entity for _row, entity in chunk])
        report.created += len(result.created)
        for row, entity in chunk:
            reason = result.errors.get(entity["id"])
            if reason is None:
                report.imported += 1
            else:
                report.rejected.append(Rejection(row, reason, entity["id"]))
        done += len(chunk)
        if progress is not None:
            progress(done, total)

    chunks = [prepared.entities[i:i + chunk_size] for i in range(0, total, chunk_size)]
    tasks = [asyncio.ensure_future(write(chunk)) for chunk in chunks]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
    report.rejected.sort(key=lambda r: r.row)
    report.seconds = time.perf_counter() - started
    return report
