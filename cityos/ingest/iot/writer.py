"""Group measurements into few store writes, and tell each sender when its data is durable.

Every measurement becomes an entity fragment queued here with a future.  Worker tasks take up to
``batch_size`` queued fragments of one tenant and write them with one broker batch upsert (one
transaction); the futures resolve only after the commit, so a device is acknowledged (HTTP 2xx,
MQTT PUBACK) only for durable data.  A batch never holds two fragments of one entity and an entity
is never in two batches at once: each measurement is its own write of that entity, in arrival
order, so the temporal history keeps every one of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from dataclasses import dataclass
from typing import Any

from cityos.core.problems import BadRequestData, Problem, ServiceUnavailable
from cityos.data.ngsild import Broker, batch_upsert

log = logging.getLogger("cityos.iot")
Key = tuple[str, str]     # (tenant, entity id)


@dataclass
class _Item:
    tenant: str
    body: dict[str, Any]
    future: asyncio.Future[None]


class MeasurementWriter:
    """Batches entity fragments into broker batch upserts (``options=update``)."""

    def __init__(self, broker: Broker, *, batch_size: int = 500, workers: int = 4) -> None:
        self.broker = broker
        self.batch_size = max(1, min(batch_size, broker.settings.max_batch_size))
        self.workers = workers
        # queued fragments per entity, in arrival order, and the entities ready to be written
        # (queued and not in flight) in the order they became ready: taking a batch then costs
        # O(batch), not a scan of everything queued behind a busy entity
        self._pending: dict[Key, deque[_Item]] = {}
        self._ready: dict[Key, None] = {}
        self._in_flight: set[Key] = set()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.queued = 0
        self.written = 0
        self.failed = 0

    async def start(self) -> None:
        """Start the worker tasks."""
        self._tasks = [asyncio.create_task(self._work(), name=f"iot-writer-{n}")
                       for n in range(self.workers)]

    async def stop(self) -> None:
        """Finish what is queued, then stop."""
        while self._pending or self._in_flight:
            self._wake.set()
            await asyncio.sleep(0.01)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    def submit(self, tenant: str, body: dict[str, Any]) -> asyncio.Future[None]:
        """Queue one entity fragment; the future resolves once it is durable."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        key = (tenant, body["id"])
        self._pending.setdefault(key, deque()).append(_Item(tenant, body, future))
        self.queued += 1
        if key not in self._in_flight:
            self._ready.setdefault(key, None)
        self._wake.set()
        return future

    def _take(self) -> list[_Item]:
        tenant: str | None = None
        batch: list[_Item] = []
        for key in list(self._ready):
            if len(batch) >= self.batch_size:
                break
            if tenant is not None and key[0] != tenant:
                continue
            tenant = key[0]
            del self._ready[key]
            queue = self._pending[key]
            batch.append(queue.popleft())
            if not queue:
                del self._pending[key]
            self._in_flight.add(key)
        self.queued -= len(batch)
        return batch

    async def _work(self) -> None:
        while True:
            batch = self._take()
            if not batch:
                self._wake.clear()
                await self._wake.wait()
                continue
            try:
                await self._write(batch)
            finally:
                for item in batch:
                    key = (item.tenant, item.body["id"])
                    self._in_flight.discard(key)
                    if key in self._pending:      # its next measurement may go now
                        self._ready[key] = None
                if self._ready:
                    self._wake.set()

    async def _write(self, batch: list[_Item]) -> None:
        async def term_map_for(context: Any) -> Any:
            return await self.broker.resolver.term_map(context)

        try:
            result = await batch_upsert(self.broker, batch[0].tenant, [i.body for i in batch],
                                        term_map_for, replace=False)
        except Problem as exc:
            self._fail(batch, exc)
            return
        except Exception as exc:   # a store driver error: the device must retry, not lose data
            log.exception("measurement write failed")
            self._fail(batch, ServiceUnavailable(f"the store could not write: {type(exc).__name__}"))
            return
        errors = {e["entityId"]: e["error"] for e in result.errors}
        for item in batch:
            if item.future.done():
                continue
            error = errors.get(item.body["id"])
            if error is None:
                self.written += 1
                item.future.set_result(None)
            else:
                self.failed += 1
                item.future.set_exception(BadRequestData(str(error.get("detail", error))))

    def _fail(self, batch: list[_Item], exc: Problem) -> None:
        self.failed += len(batch)
        for item in batch:
            if not item.future.done():
                item.future.set_exception(exc)

    def metrics(self) -> dict[str, int]:
        """Counters for /health."""
        return {"queued": self.queued, "written": self.written, "failed": self.failed}
