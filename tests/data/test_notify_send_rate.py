"""The send-rate budget: a busy broker sends fewer, larger notifications; a calm one does not wait."""

from __future__ import annotations

import asyncio
import time

from cityos.data.ngsild.notify.dispatcher import Notifier
from tests.data.test_notify_support import (
    MemoryStore,
    Registry,
    make_settings,
    receiver,
    render,
    row,
    running,
    subscription,
)

SUBS = 10
CHANGES = 60                     # one every 20 ms: 1.2 s of changes


async def _feed(busy: bool) -> tuple[int, int]:
    """(notifications, entities) received when CHANGES rows each fire SUBS subscriptions."""
    async with receiver() as rec:
        subs = [subscription(rec.url()) for _ in range(SUBS)]
        # 10 busy lanes at 20 requests/s: each waits 0.5 s between two notifications when busy
        notifier = Notifier(MemoryStore(), Registry(*subs), render, make_settings(),
                            linger=0.01, send_rate=20.0)
        stop = asyncio.Event()

        async def hog() -> None:            # blocks the loop 8 ms at a time: timers run late
            while not stop.is_set():
                time.sleep(0.008)
                await asyncio.sleep(0)

        async with running(notifier):
            hogging = asyncio.create_task(hog()) if busy else None
            for n in range(CHANGES):
                notifier.submit([row([s.id for s in subs], n=n)])
                await asyncio.sleep(0.02)
            await rec.wait_for(lambda r: sum(len(x.body["data"]) for x in r) == SUBS * CHANGES,
                               timeout=10)
            stop.set()
            if hogging is not None:
                await hogging
        received = list(rec.received)
    return len(received), sum(len(r.body["data"]) for r in received)


async def test_a_busy_loop_batches_by_the_budget_and_loses_nothing() -> None:
    calm_requests, calm_entities = await _feed(busy=False)
    busy_requests, busy_entities = await _feed(busy=True)
    assert calm_entities == busy_entities == SUBS * CHANGES
    # calm: every lane sends about every linger (20 ms between changes): ~one request a change
    assert calm_requests >= SUBS * CHANGES // 2
    # busy: each lane sends every 0.5 s or so over 1.2 s of changes (plus the first at once)
    assert busy_requests <= SUBS * 6


async def test_metrics_show_the_lag_and_the_wait_it_sets() -> None:
    notifier = Notifier(MemoryStore(), Registry(), render, make_settings(), linger=0.01,
                        send_rate=20.0)
    async with running(notifier):
        assert notifier.metrics()["lingerMs"] == 10.0      # calm, no lane: the linger
        for _ in range(30):                                 # ~0.3 s of a blocked loop
            time.sleep(0.01)
            await asyncio.sleep(0)
        await asyncio.sleep(0.05)
        metrics = notifier.metrics()
    assert metrics["loopLagMs"] > 5.0
    assert metrics["lingerMs"] == 10.0     # busy, but no lane has work: still the linger floor
