"""The SQLite WAL stays bounded under a steady stream of writes (store/sqlite.py checkpointer).

A PASSIVE checkpoint never catches up with a writer that never pauses, and SQLite starts the
WAL over only after a checkpoint that did: without the RESTART checkpoint the WAL grew without
end.  The control run (restart threshold out of reach) shows the same load growing it.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from cityos.data.ngsild.model import DEFAULT_VOCAB
from cityos.data.ngsild.store import sqlite as sqlite_store
from cityos.data.ngsild.store.base import HistoryRow, TemporalEntityRow
from cityos.data.ngsild.store.sqlite import SQLiteEntityStore

SENSOR = "urn:ngsi-ld:Sensor:wal"
T0 = 1_795_597_200_000_000
RECORD = TemporalEntityRow(entity_id=SENSOR, types=[DEFAULT_VOCAB + "Sensor"], scope=None,
                           created_at=T0, modified_at=T0)
PAGE = 4096


async def _steady_writes(store: SQLiteEntityStore, seconds: float) -> None:
    """Writers that never let the queue run dry, each job 20 history rows of ~1 KB."""
    deadline = time.monotonic() + seconds
    counter = iter(range(10**9))

    async def writer(w: int) -> None:
        while time.monotonic() < deadline:
            rows = []
            for _ in range(20):
                n = next(counter)
                rows.append(HistoryRow(
                    entity_id=SENSOR, attr=f"{DEFAULT_VOCAB}a{n % 500}", dataset_id="",
                    instance_id=f"urn:ngsi-ld:attribute:instance:{n}", observed_at=T0 + n,
                    created_at=T0 + n, modified_at=T0 + n, deleted=False,
                    doc={"type": "Property", "value": n, "note": "x" * 900}))
            await store.temporal_write("", RECORD, rows)

    await asyncio.gather(*(writer(w) for w in range(8)))


async def _largest_wal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, restart_frames: int,
                       name: str) -> int:
    monkeypatch.setattr(sqlite_store, "RESTART_FRAMES", restart_frames)
    monkeypatch.setattr(sqlite_store, "WAL_SIZE_LIMIT", 64 * PAGE)
    monkeypatch.setattr(sqlite_store, "CHECKPOINT_INTERVAL", 0.05)
    store = SQLiteEntityStore(str(tmp_path / f"{name}.db"))
    await store.open()
    wal = tmp_path / f"{name}.db-wal"
    largest = 0
    try:
        writes = asyncio.create_task(_steady_writes(store, 2.5))
        while not writes.done():
            await asyncio.sleep(0.05)
            largest = max(largest, wal.stat().st_size if wal.exists() else 0)
        await writes
    finally:
        await store.close()
    return largest


async def test_a_steady_stream_of_writes_keeps_the_wal_bounded(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bounded = await _largest_wal(tmp_path, monkeypatch, 256, "bounded")
    unbounded = await _largest_wal(tmp_path, monkeypatch, 10**9, "control")
    # the control grows with every write (~50 MB a second here); the bounded WAL stays within
    # what the writes of a few checkpoint intervals add past the threshold
    assert unbounded > 4 * bounded, (bounded, unbounded)
    assert bounded < 32 * 1024 * 1024, bounded
