"""Background housekeeping of the building blocks: one way to run a job every N seconds and to
stop it, so each part does not carry its own copy of the same start/stop/cancel code."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any


async def cancel_quietly(task: asyncio.Task[Any] | None) -> None:
    """Cancel ``task`` and wait until it has ended (None: nothing to do)."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


class Repeating:
    """``job`` every ``interval`` seconds, the first run after ``first_delay``; a failing run is
    logged and the next one still happens."""

    def __init__(self, name: str, job: Callable[[], Awaitable[Any]], interval: float, *,
                 first_delay: float = 0.0, log: logging.Logger | None = None) -> None:
        self.name, self.job, self.interval, self.first_delay = name, job, interval, first_delay
        self.log = log or logging.getLogger("cityos")
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name=self.name)

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_quietly(task)

    async def _loop(self) -> None:
        await asyncio.sleep(self.first_delay)
        while True:
            try:
                await self.job()
            except asyncio.CancelledError:
                raise
            except Exception:       # housekeeping must not die of one bad run
                self.log.exception("%s failed", self.name)
            await asyncio.sleep(self.interval)
