"""Deleting fan-out sets that nothing names any more (ADR 0006, amendment of 2026-11-27).

A change that fires many subscriptions stores their (subscription, trigger) pairs once, as a
document named by a digest, and its outbox row names the digest (events.py).  Outbox rows go
within milliseconds, the sets stayed: every new combination of matching subscriptions (a
subscription added or removed, a ``q`` that some values pass and others do not) added one for
good.

The sweep is mark and delete.  Every write that stores a set, or uses one this process has not
written for ``FANOUT_REFRESH`` (10 minutes), gives it a fresh ``seq`` in the write's own
transaction.  Once an hour the sweep deletes the sets whose ``seq`` is at or below the mark it
took an hour before and that no outbox row names, then takes a new mark (a document of its
own, so deleting other documents never lowers later seqs below it).  A write that relies
on a set without writing it does so because its process wrote the set less than 10 minutes
ago, after the mark, so that set survives; a set whose rows are still in the outbox (a
receiver down, a crash) survives because they name it.  Each node of a cluster may run the
sweep: it deletes nothing another node still relies on, by the same argument, and on
PostgreSQL it skips the sets a write holds locked instead of waiting for them.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from cityos.data.ngsild import events

log = logging.getLogger(__name__)

SWEEP_INTERVAL = 3600.0


async def fanout_sweep_loop(store: Any, interval: float = SWEEP_INTERVAL) -> None:
    """Take a mark now; every ``interval`` seconds sweep up to the previous mark and take a new
    one, until cancelled (run from the app lifespan)."""
    if interval <= events.FANOUT_REFRESH:
        raise ValueError("the sweep's interval must be longer than FANOUT_REFRESH: a mark must "
                         "be older than every set a process counts as written")
    mark: int | None = None
    while True:
        try:
            deleted, mark = await store.sweep_fanout_sets(mark)
            if deleted:
                log.info("fan-out sets: %d no longer named by any outbox row deleted", deleted)
        except asyncio.CancelledError:
            raise
        except Exception:      # a failed sweep keeps its mark and tries again next time
            log.exception("fan-out sets: sweep failed")
        await asyncio.sleep(interval)
