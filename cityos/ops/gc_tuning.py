"""The garbage collector's pace for a serving process (ADR 0014).

CPython collects its youngest generation every 700 net allocations of container objects, and
every object that lives through two young collections ends up in the oldest generation, whose
collection walks the whole heap.  A broker under load keeps many objects alive for tens of
milliseconds (queued notifications, requests in flight, writes waiting for the group commit):
with the default pace they were promoted by the thousand, and full collections of 50-105 ms ran
every few seconds.  Each one stopped every request and notification for its length, which made
the slowest 1 % of notifications late by as much, and the collector took ~3 % of the CPU.

A young generation of 20,000 lets those objects die young: in the same benchmark (100
subscriptions, SQLite) the serving process ran 15 young collections and no full one where it had
run ~1,900 and 12-14, its CPU per update fell by about a fifth and the notification p99 at a
paced 500 updates/s from 81-116 ms to 39-41 ms.  The older generations keep Python's thresholds,
so cyclic garbage is still reclaimed, only in fewer, larger steps; what waits meanwhile is at
most the 20,000 youngest objects.
"""

from __future__ import annotations

import gc


def tune_garbage_collector(young_threshold: int) -> None:
    """Collect the young generation every ``young_threshold`` allocations (0: Python's pace)."""
    if young_threshold <= 0:
        return
    _, middle, old = gc.get_threshold()
    gc.set_threshold(young_threshold, middle, old)
