"""Group commit: many measurements in few store writes, each sender told when its data is durable.

Every measurement becomes an entity fragment queued here with a future.  A bounded number of
writer tasks (``writers``: one for SQLite, whose store has a single writer thread anyway) each take
*everything* of one tenant that is ready, up to ``batch_size`` fragments, and write it with one
broker batch upsert — one ``store.write`` transaction whose history rows and subscription effects
are produced per entity inside it (ADR 0006).  While a write is in flight the next measurements
queue up, so the group grows with the load and a quiet agent still writes each measurement at once
(no timer, no added latency).  The futures resolve only after the commit: a device is acknowledged
(HTTP 2xx, MQTT PUBACK) only for durable data.

*Every measurement is a state of its entity.*  A group takes all queued measurements of an entity,
in arrival order, and writes them as its successive states (``each_state``: one entity upsert,
one history row and one round of subscription matching per measurement), so a device's burst —
a JSON array or several UltraLight measures in one request, or a backlog after a restart — costs
one entity write, not one per measurement, and the history and subscriptions still see every
measurement.  An entity is never in two groups at once, so its states stay in arrival order.

*Failures stay with their measurement.*  The broker validates every fragment of a group on its
own (an invalid one fails alone, with its own 400).  When the group's write fails as a whole (a
driver error, a constraint on one entity), its members are written again one by one, so only the
measurement that cannot be stored fails — with 503 when the store itself is down.
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
    """Group-commits entity fragments through broker batch upserts (``options=update``)."""

    def __init__(self, broker: Broker, *, batch_size: int = 500, writers: int = 1) -> None:
        self.broker = broker
        self.batch_size = max(1, min(batch_size, broker.settings.max_batch_size))
        self.writers = max(1, writers)
        # queued fragments per entity, in arrival order, and the entities ready to be written
        # (queued and not in flight) in the order they became ready: taking a group then costs
        # O(group), not a scan of everything queued behind a busy entity
        self._pending: dict[Key, deque[_Item]] = {}
        self._ready: dict[Key, None] = {}
        self._in_flight: set[Key] = set()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False
        self.queued = 0
        self.written = 0
        self.failed = 0
        self.groups = 0
        self.largest_group = 0
        self.split_groups = 0

    async def start(self) -> None:
        """Start the writer tasks."""
        self._closed = False
        self._tasks = [asyncio.create_task(self._work(), name=f"iot-writer-{n}")
                       for n in range(self.writers)]

    async def stop(self) -> None:
        """Refuse new measurements (503), write everything queued, then stop."""
        self._closed = True
        while self._pending or self._in_flight:
            self._wake.set()
            await asyncio.sleep(0.01)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    @property
    def closed(self) -> bool:
        """Stopping or stopped: new measurements are refused with 503."""
        return self._closed

    def submit(self, tenant: str, body: dict[str, Any]) -> asyncio.Future[None]:
        """Queue one entity fragment; the future resolves once it is durable."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._closed:      # shutting down: the device sends again to the next process
            future.set_exception(ServiceUnavailable("the IoT agent is shutting down"))
            return future
        key = (tenant, body["id"])
        self._pending.setdefault(key, deque()).append(_Item(tenant, body, future))
        self.queued += 1
        if key not in self._in_flight:
            self._ready.setdefault(key, None)
        self._wake.set()
        return future

    def _take(self) -> list[_Item]:
        """The next group: the first ready entity's tenant, every queued fragment of each ready
        entity (in arrival order), up to ``batch_size``."""
        tenant: str | None = None
        group: list[_Item] = []
        for key in list(self._ready):
            if len(group) >= self.batch_size:
                break
            if tenant is not None and key[0] != tenant:
                continue
            tenant = key[0]
            del self._ready[key]
            queue = self._pending[key]
            while queue and len(group) < self.batch_size:
                group.append(queue.popleft())
            if not queue:
                del self._pending[key]
            self._in_flight.add(key)
        self.queued -= len(group)
        return group

    async def _work(self) -> None:
        while True:
            group = self._take()
            if not group:
                self._wake.clear()
                await self._wake.wait()
                continue
            self.groups += 1
            self.largest_group = max(self.largest_group, len(group))
            try:
                await self._write(group)
            finally:
                for item in group:
                    key = (item.tenant, item.body["id"])
                    self._in_flight.discard(key)
                    if key in self._pending:      # its next measurement may go now
                        self._ready[key] = None
                if self._ready:
                    self._wake.set()

    async def _write(self, group: list[_Item]) -> None:
        failure = await self._attempt(group)
        if failure is None:
            return
        if len(group) == 1:
            self._fail(group[0], failure)
            return
        # nothing of the group was committed (one transaction): find the measurement that
        # cannot be stored by writing each on its own, so the others still succeed
        self.split_groups += 1
        log.warning("IoT agent: a group of %d measurements failed (%s); writing them one by one",
                    len(group), failure.detail)
        down, last = 0, failure
        for item in group:
            if down >= 2:     # two in a row could not be written either: the store is down
                self._fail(item, last)
                continue
            alone = await self._attempt([item], quiet=True)
            if alone is not None:
                self._fail(item, alone)
                last = alone
            down = down + 1 if alone is not None and alone.status >= 500 else 0

    async def _attempt(self, group: list[_Item], *, quiet: bool = False) -> Problem | None:
        """Write a group; resolve what the broker settled; the group's failure, if it failed."""
        async def term_map_for(context: Any) -> Any:
            return await self.broker.resolver.term_map(context)

        try:
            result = await batch_upsert(self.broker, group[0].tenant, [i.body for i in group],
                                        term_map_for, replace=False, each_state=True)
        except Problem as exc:
            return exc
        except Exception as exc:   # a store driver error: the device must retry, not lose data
            if not quiet:
                log.exception("IoT agent: measurement write failed")
            return ServiceUnavailable(f"the store could not write: {type(exc).__name__}")
        # an entity's error fails each of its measurements in this group: none is acknowledged
        # unless written (a resent one may then be recorded twice, never lost)
        errors = {e["entityId"]: e["error"] for e in result.errors}
        for item in group:
            if item.future.done():
                continue
            error = errors.get(item.body["id"])
            if error is None:
                self.written += 1
                item.future.set_result(None)
            else:
                self._fail(item, BadRequestData(str(error.get("detail", error))))
        return None

    def _fail(self, item: _Item, exc: Problem) -> None:
        if not item.future.done():
            self.failed += 1
            item.future.set_exception(exc)

    def metrics(self) -> dict[str, int]:
        """Counters for /health."""
        return {"queued": self.queued, "written": self.written, "failed": self.failed,
                "groups": self.groups, "largest_group": self.largest_group,
                "split_groups": self.split_groups}
