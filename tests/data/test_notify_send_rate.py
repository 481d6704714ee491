"""The send-rate budget: many busy subscriptions send fewer, larger notifications, losing nothing."""

from __future__ import annotations

import asyncio

from cityos.data.ngsild.notify.dispatcher import Notifier
from tests.data.test_notify_support import (
    MemoryStore,
    Registry,
    eventually,
    make_settings,
    receiver,
    render,
    row,
    running,
    subscription,
)

SUBS = 10
CHANGES = 60                     # one every 20 ms: 1.2 s of changes


async def _feed(send_rate: float) -> tuple[int, int]:
    """(notifications, entities) received when CHANGES rows each fire SUBS subscriptions."""
    async with receiver() as rec:
        subs = [subscription(rec.url()) for _ in range(SUBS)]
        notifier = Notifier(MemoryStore(), Registry(*subs), render, make_settings(),
                            linger=0.01, send_rate=send_rate)
        async with running(notifier):
            for n in range(CHANGES):
                notifier.submit([row([s.id for s in subs], n=n)])
                await asyncio.sleep(0.02)
            await rec.wait_for(lambda r: sum(len(x.body["data"]) for x in r) == SUBS * CHANGES,
                               timeout=10)
        received = list(rec.received)
    return len(received), sum(len(r.body["data"]) for r in received)


async def test_the_budget_batches_busy_lanes_and_loses_nothing() -> None:
    roomy_requests, roomy_entities = await _feed(send_rate=10_000)  # 10 lanes: the 10 ms linger
    tight_requests, tight_entities = await _feed(send_rate=20)      # 10 lanes: 0.5 s each
    assert roomy_entities == tight_entities == SUBS * CHANGES
    # within budget every lane sends about once a change (20 ms apart, linger 10 ms)
    assert roomy_requests >= SUBS * CHANGES // 2
    # over budget each lane sends every 0.5 s over 1.2 s of changes (the first one at once)
    assert tight_requests <= SUBS * 5


async def test_metrics_show_the_wait_of_a_lane_that_has_just_sent() -> None:
    async with receiver() as rec:
        subs = [subscription(rec.url()) for _ in range(SUBS)]
        notifier = Notifier(MemoryStore(), Registry(*subs), render, make_settings(), linger=0.01,
                            send_rate=20.0)
        async with running(notifier):
            idle = notifier.metrics()["lingerMs"]
            notifier.submit([row([s.id for s in subs], n=1)])
            await rec.wait_for(lambda r: len(r) == SUBS)     # the first ones go out at once
            notifier.submit([row([s.id for s in subs], n=2)])
            busy = notifier.metrics()["lingerMs"]
            await rec.wait_for(lambda r: len(r) == 2 * SUBS)
            await eventually(lambda: notifier.metrics()["lingerMs"] == 10.0)
    assert idle == 10.0                  # no lane has work: the linger
    assert busy == 500.0                 # 10 lanes with work at 20 requests/s


def test_lanes_that_have_sent_wait_for_one_shared_tick() -> None:
    import time

    notifier = Notifier(MemoryStore(), Registry(), render, make_settings(), linger=0.05,
                        send_rate=10_000.0)
    period = 0.05
    now = time.monotonic()
    tick = now // period * period                 # the last tick of the shared clock
    # two lanes that sent early and late in the same period wait for the same next tick
    notifier._last_send[("", "early")] = tick + 0.1 * (now - tick)
    notifier._last_send[("", "late")] = tick + 0.9 * (now - tick)
    for key in (("", "early"), ("", "late")):
        due = time.monotonic() + notifier._until_next_send(key)
        assert abs(due - (tick + period)) < 0.002
    # a lane that has not sent for a period sends at once
    notifier._last_send[("", "idle")] = now - 2 * period
    assert notifier._until_next_send(("", "idle")) <= 0
    assert notifier._until_next_send(("", "never")) <= 0
