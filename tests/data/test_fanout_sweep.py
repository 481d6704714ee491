"""Fan-out sets no outbox row names any more are deleted, on both engines, and never one that a
row or a write still relies on (fanout_sweep.py, ADR 0006 amendment of 2026-11-27).

The store is the real one; the matcher is a stand-in that fires the same subscriptions for every
change, and nobody delivers, so the outbox rows stay until the test finishes them itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from cityos.data.ngsild import events, fanout_sweep
from cityos.data.ngsild.events import BrokerEvents
from cityos.data.ngsild.store import open_entity_store
from cityos.data.ngsild.store.base import FANOUT, Change, OutboxRow, WriteSet
from cityos.data.ngsild.store.sqlite import SQLiteEntityStore
from tests.conftest import _empty_postgres
from tests.data.test_notify_support import entity, make_settings


class Fires:
    """A matcher firing ``count`` subscriptions named ``prefix``0, 1, ... for every change."""

    def __init__(self, count: int, prefix: str = "s") -> None:
        self.count = count
        self.use(prefix)

    def use(self, prefix: str) -> None:
        """Fire another group from now on."""
        self.fired = tuple((f"urn:ngsi-ld:Subscription:{prefix}{i}", "attributeUpdated")
                           for i in range(self.count))

    def match(self, tenant: str, change: Change, kinds: dict[str, str]) -> Any:
        return self.fired


class Keeps:
    """Hands nothing to a notifier; remembers the rows so the test can finish them."""

    def __init__(self) -> None:
        self.rows: list[OutboxRow] = []

    def __call__(self, rows: list[OutboxRow]) -> None:
        self.rows.extend(rows)


@pytest.fixture
async def store(database_url: str, tmp_path: Any) -> AsyncIterator[Any]:
    if database_url.startswith("postgresql"):
        await _empty_postgres(database_url)
        opened: Any = open_entity_store(make_settings(database_url=database_url))
    else:
        opened = SQLiteEntityStore(str(tmp_path / "sweep.db"), synchronous="OFF")
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


async def _put(store: Any, n: int, value: Any = 1) -> None:
    doc = entity(n, value)
    await store.write("", [doc["id"]], lambda current: WriteSet(upserts=[doc]))


async def _set_ids(store: Any) -> set[str]:
    return {d["key"] for d in await store.list_documents(FANOUT)}


def _observe(store: Any, fires: Fires) -> Keeps:
    kept = Keeps()
    store.observer = BrokerEvents(history=False, matcher=fires, deliver=kept)
    return kept


async def test_a_set_named_by_a_row_survives_and_goes_once_the_row_is_done(store: Any) -> None:
    kept = _observe(store, Fires(10))
    await _put(store, 1)
    (key,) = await _set_ids(store)
    deleted, mark = await store.sweep_fanout_sets(None)       # only takes the mark
    assert deleted == 0 and mark > 0
    assert (await store.sweep_fanout_sets(mark))[0] == 0      # the row still names it
    assert await _set_ids(store) == {key}
    await store.outbox_done([r.id for r in kept.rows])
    deleted, _ = await store.sweep_fanout_sets(mark)
    assert deleted == 1 and await _set_ids(store) == set()


async def test_only_sets_at_or_below_the_mark_go(store: Any,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events, "FANOUT_REFRESH", 0.0)       # every use writes the set again
    fires = Fires(10, "gone")
    kept = _observe(store, fires)                           # one process throughout
    await _put(store, 1)
    (gone,) = await _set_ids(store)
    fires.use("old")
    await _put(store, 2)
    _, mark = await store.sweep_fanout_sets(None)
    fires.use("new")                                        # first written after the mark
    await _put(store, 3)
    fires.use("old")                                        # written before it, used again after
    await _put(store, 4)
    await store.outbox_done([r.id for r in kept.rows])
    before = await _set_ids(store)
    assert len(before) == 3
    deleted, _ = await store.sweep_fanout_sets(mark)
    assert deleted == 1 and await _set_ids(store) == before - {gone}


async def test_a_deleted_document_does_not_pull_later_sets_below_the_mark(store: Any) -> None:
    """On SQLite a seq is max(seq) + 1: deleting the newest document (a subscription) used to
    hand the next set a seq at or below the mark just taken, and the sweep deleted it."""
    await store.put_document("subscription", "", "urn:ngsi-ld:Subscription:x", {"id": "x"})
    _, mark = await store.sweep_fanout_sets(None)
    assert await store.delete_document("subscription", "", "urn:ngsi-ld:Subscription:x")
    kept = _observe(store, Fires(10))
    await _put(store, 1)
    await store.outbox_done([r.id for r in kept.rows])
    assert (await store.sweep_fanout_sets(mark))[0] == 0     # written after the mark: kept
    assert len(await _set_ids(store)) == 1


async def test_a_set_is_written_again_after_the_refresh_so_a_sweep_cannot_strand_a_row(
        store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The process remembers which sets it wrote and skips them; after a sweep deleted one, a
    row naming it would point at nothing if that memory were never refreshed."""
    kept = _observe(store, Fires(10))
    await _put(store, 1)
    await store.outbox_done([r.id for r in kept.rows])
    _, mark = await store.sweep_fanout_sets(None)
    assert (await store.sweep_fanout_sets(mark))[0] == 1      # as an hour later
    observer = store.observer
    await _put(store, 2)                                       # within the refresh: not written
    assert await _set_ids(store) == set()
    monkeypatch.setattr(events, "FANOUT_REFRESH", 0.0)       # the refresh has come
    await _put(store, 3)
    assert store.observer is observer
    (key,) = await _set_ids(store)
    doc = await store.get_document(FANOUT, "", key)
    assert doc is not None and len(doc["subs"]) == 10


async def test_the_loop_sweeps_with_the_mark_of_its_previous_round(
        store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="FANOUT_REFRESH"):   # a mark younger than the refresh
        await fanout_sweep.fanout_sweep_loop(store, interval=events.FANOUT_REFRESH)
    monkeypatch.setattr(events, "FANOUT_REFRESH", 0.0)
    kept = _observe(store, Fires(10))
    await _put(store, 1)
    await store.outbox_done([r.id for r in kept.rows])
    task = asyncio.create_task(fanout_sweep.fanout_sweep_loop(store, interval=0.05))
    try:
        async with asyncio.timeout(5):
            while await _set_ids(store):
                await asyncio.sleep(0.02)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_a_set_a_write_holds_is_skipped_and_the_sweep_does_not_wait(pg_url: str) -> None:
    """PostgreSQL (SQLite has one writer): a write re-stamping a set holds its row lock until it
    commits.  The sweep used to wait for it, and a write locking a second set the sweep had
    already deleted made a deadlock (the write got a 503)."""
    await _empty_postgres(pg_url)
    store: Any = open_entity_store(make_settings(database_url=pg_url))
    await store.open()
    try:
        await _sweep_beside_a_held_set(store, pg_url)
    finally:
        await store.close()


async def _sweep_beside_a_held_set(store: Any, database_url: str) -> None:
    import asyncpg

    fires = Fires(10, "held")
    kept = _observe(store, fires)
    await _put(store, 1)
    (held,) = await _set_ids(store)
    fires.use("free")
    await _put(store, 2)
    await store.outbox_done([r.id for r in kept.rows])
    _, mark = await store.sweep_fanout_sets(None)
    writer = await asyncpg.connect(database_url)
    try:
        async with writer.transaction():
            await writer.execute("SELECT 1 FROM documents WHERE kind = $1 AND id = $2 "
                                 "FOR UPDATE", FANOUT, held)
            async with asyncio.timeout(5):                    # must not wait for the writer
                deleted, _ = await store.sweep_fanout_sets(mark)
        assert deleted == 1 and await _set_ids(store) == {held}
    finally:
        await writer.close()
