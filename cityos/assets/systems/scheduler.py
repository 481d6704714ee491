"""The task that pulls every enabled external system when its interval has passed.

Every ``CITYOS_SYSTEMS_POLL_INTERVAL`` seconds the scheduler lists the systems of all tenants and
starts a pull for each one due (``nextRunAt`` reached), each in its own task so that a slow
system does not hold up the others, and never two pulls of the same system at once.  With several
CityOS nodes sharing one database, a pull slot is claimed by creating a lease document
``{id}@{slot}`` (``put_document(create=True)`` succeeds on one node only), so each due pull runs
once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from cityos.assets.systems.actions import run_system
from cityos.assets.systems.model import DOCUMENT_KIND
from cityos.data.ngsild import Broker

LEASE_KIND = "external-system-lease"
log = logging.getLogger("cityos.systems")


class SystemScheduler:
    """Started and stopped by the app's lifespan; ``poll_interval`` 0 means off."""

    def __init__(self, broker: Broker, poll_interval: float) -> None:
        self.broker = broker
        self.poll_interval = poll_interval
        self._task: asyncio.Task[None] | None = None
        self._running: dict[tuple[str, str], asyncio.Task[Any]] = {}
        self._finished = asyncio.Condition()
        self.completed = 0            # pulls finished since start (for tests and metrics)

    async def start(self) -> None:
        """Begin polling (no-op when switched off)."""
        if self.poll_interval > 0 and self._task is None:
            self._task = asyncio.create_task(self._loop(), name="external-systems")

    async def stop(self) -> None:
        """Stop polling and cancel pulls in flight."""
        tasks = [t for t in (self._task, *self._running.values()) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._task = None
        self._running.clear()

    async def wait_for(self, completed: int, timeout: float = 10.0) -> None:
        """Wait until at least ``completed`` scheduled pulls have finished."""
        async with asyncio.timeout(timeout), self._finished:
            await self._finished.wait_for(lambda: self.completed >= completed)

    async def _loop(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:   # a database hiccup: try again at the next tick
                log.exception("external-system scheduler tick failed")
            await asyncio.sleep(self.poll_interval)

    async def tick(self) -> int:
        """Start the pulls that are due now; how many were started."""
        now = time.time()
        started = 0
        for document in await self.broker.store.list_documents(DOCUMENT_KIND, None):
            key = (document["_tenant"], document["id"])
            if not document.get("enabled", True) or key in self._running:
                continue
            if float(document.get("_next") or 0) > now:
                continue
            if not await self._claim(key, float(document["interval"]), now):
                continue
            self._running[key] = asyncio.create_task(self._pull(*key), name=f"pull {key[1]}")
            started += 1
        return started

    async def _claim(self, key: tuple[str, str], interval: float, now: float) -> bool:
        tenant, system_id = key
        slot = int(now // interval)
        claimed = await self.broker.store.put_document(
            LEASE_KIND, tenant, f"{system_id}@{slot}", {"at": now}, create=True)
        if claimed:
            await self.broker.store.delete_document(LEASE_KIND, tenant, f"{system_id}@{slot - 1}")
        return claimed

    async def _pull(self, tenant: str, system_id: str) -> None:
        try:
            await run_system(self.broker, tenant, system_id)
        except Exception:
            log.exception("external system %s could not be pulled", system_id)
        finally:
            self._running.pop((tenant, system_id), None)
            async with self._finished:
                self.completed += 1
                self._finished.notify_all()
