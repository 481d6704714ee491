"""Outbox rows are finished and deleted, left-over rows are delivered at start, counters persist,
periodic subscriptions send the current state.  Partly on the real SQLite store."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from cityos.data.ngsild.notify.counters import FLUSH_CHUNK, KIND, CounterStore
from cityos.data.ngsild.notify.dispatcher import Notifier
from cityos.data.ngsild.store.base import Change, Effects, OutboxRow, Selector, TypeExpr, WriteSet
from cityos.data.ngsild.store.sqlite import SQLiteEntityStore
from tests.data.test_notify_support import (
    TYPE,
    MemoryStore,
    Registry,
    entity,
    eventually,
    make_settings,
    receiver,
    render,
    row,
    running,
    subscription,
)


class Crashing:
    """An observer that writes notify rows but 'crashes' before handing them to a notifier."""

    def __init__(self, sub_ids: list[str]) -> None:
        self.sub_ids = sub_ids

    def effects(self, tenant: str, changes: list[Change]) -> Effects:
        return Effects(outbox=[OutboxRow(
            id=f"row-{uuid.uuid4().hex}", tenant=tenant, kind="notify",
            body={"subs": [[s, "attributeUpdated"] for s in self.sub_ids], "entity": c.after,
                  "previous": c.before, "at": "2026-01-01T00:00:00.000000Z"}) for c in changes])

    def committed(self, tenant: str, effects: Effects) -> None:
        pass


@pytest.fixture
async def sqlite_path(tmp_path: Path) -> AsyncIterator[str]:
    yield str(tmp_path / "notify.db")


async def _open(path: str) -> SQLiteEntityStore:
    store = SQLiteEntityStore(path, synchronous="OFF")
    await store.open()
    return store


def _outbox_size(path: str) -> int:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        count: int = conn.execute("SELECT count(*) FROM outbox").fetchone()[0]
        return count


async def _put(store: SQLiteEntityStore, n: int, value: Any = 1) -> None:
    doc = entity(n, value)
    await store.write("", [doc["id"]], lambda current: WriteSet(upserts=[doc]))


async def test_rows_left_by_a_crash_are_delivered_at_start_and_deleted(sqlite_path: str) -> None:
    async with receiver() as rec:
        sub = subscription(rec.url())
        first = await _open(sqlite_path)
        first.observer = Crashing([sub.id])
        for n in range(5):
            await _put(first, n)
        await first.close()
        assert _outbox_size(sqlite_path) == 5

        store = await _open(sqlite_path)
        try:
            async with running(Notifier(store, Registry(sub), render, make_settings())):
                await rec.wait_for(lambda r: len(rec.entity_ids()) == 5)
                await eventually(lambda: not store._claimed)   # outbox_done ran for all five
        finally:
            await store.close()
        assert sorted(rec.entity_ids()) == [f"urn:ngsi-ld:Parking:{n}" for n in range(5)]

        assert _outbox_size(sqlite_path) == 0


async def test_submitted_rows_are_marked_done_in_batches() -> None:
    async with receiver() as rec:
        subs = [subscription(rec.url(f"/s{i}")) for i in range(3)]
        store = MemoryStore()
        notifier = Notifier(store, Registry(*subs), render, make_settings())
        async with running(notifier):
            rows = [row([s.id for s in subs], n=n) for n in range(50)]
            store.outbox.update({r.id: r for r in rows})
            notifier.submit(rows)
            await eventually(lambda: not store.outbox)
            assert notifier.metrics()["pendingRows"] == 0
        assert len(rec.entity_ids()) == 150
        assert sum(len(c) for c in store.done_calls) == 50
        assert len(store.done_calls) < 50            # batched, not one call per row


async def test_rows_for_unknown_subscriptions_are_finished() -> None:
    store = MemoryStore()
    r, empty = row(["urn:ngsi-ld:Subscription:gone"]), row([])
    store.outbox.update({r.id: r, empty.id: empty})
    async with running(Notifier(store, Registry(), render, make_settings())):
        await eventually(lambda: not store.outbox)


async def test_a_row_being_delivered_is_not_taken_twice_by_the_poller() -> None:
    async with receiver() as rec:
        rec.statuses = [500, 500]          # keeps the row in flight across a few polls
        sub = subscription(rec.url())
        store = MemoryStore()
        r = row([sub.id])
        store.outbox[r.id] = r
        notifier = Notifier(store, Registry(sub), render,
                            make_settings(notification_backoff=0.2), poll_interval=0.05)
        async with running(notifier):
            await eventually(lambda: not store.outbox)
        assert len(rec.received) == 1


async def test_counters_are_saved_and_loaded() -> None:
    async with receiver() as rec:
        sub = subscription(rec.url())
        store = MemoryStore()
        registry = Registry(sub)
        notifier = Notifier(store, registry, render, make_settings(), counters_interval=0.05)
        async with running(notifier):
            notifier.submit([row([sub.id]), row([sub.id])])
            await eventually(lambda: registry.counters("", sub.id).times_sent >= 1)
            await eventually(lambda: (KIND, "", sub.id) in store.documents)
        saved = store.documents[(KIND, "", sub.id)]
        assert saved["id"] == sub.id and saved["timesSent"] >= 1

        fresh = Registry(sub)
        async with running(Notifier(store, fresh, render, make_settings())):
            counters = fresh.counters("", sub.id)
            assert counters.times_sent == saved["timesSent"]
            assert counters.last_success == saved["lastSuccess"]


async def test_counters_of_many_subscriptions_go_in_one_write_per_chunk() -> None:
    subs = [subscription(f"http://127.0.0.1:1/{n}") for n in range(FLUSH_CHUNK + 3)]
    registry, store = Registry(*subs), MemoryStore()
    counters = CounterStore(store, registry)
    for n, sub in enumerate(subs):
        registry.counters("", sub.id).times_sent = n
        counters.dirty.add(("", sub.id))
    counters.dirty.add(("", "urn:ngsi-ld:Subscription:removed"))     # removed meanwhile
    await counters.flush()
    assert store.put_many_calls == 2 and not counters.dirty
    assert {doc["id"]: doc["timesSent"] for doc in store.documents.values()} == {
        sub.id: n for n, sub in enumerate(subs)}


async def test_counters_that_could_not_be_saved_are_saved_at_the_next_flush() -> None:
    sub = subscription("http://127.0.0.1:1/")
    registry, store = Registry(sub), MemoryStore()
    counters = CounterStore(store, registry)
    counters.dirty.add(("", sub.id))
    registry.counters("", sub.id).times_sent = 7
    working = store.put_documents

    async def failing(kind: str, docs: list[tuple[str, str, dict[str, Any]]]) -> None:
        raise OSError("disk full")

    store.put_documents = failing  # type: ignore[method-assign]
    await counters.flush()
    assert counters.dirty == {("", sub.id)} and not store.documents
    store.put_documents = working  # type: ignore[method-assign]
    await counters.flush()
    assert store.documents[(KIND, "", sub.id)]["timesSent"] == 7


async def test_counters_on_the_real_store(sqlite_path: str) -> None:
    async with receiver() as rec:
        sub = subscription(rec.url(), tenant="kobe")
        store = await _open(sqlite_path)
        try:
            registry = Registry(sub)
            notifier = Notifier(store, registry, render, make_settings(), counters_interval=0.05)
            async with running(notifier):
                notifier.submit([row([sub.id], tenant="kobe")])
                await eventually(lambda: registry.counters("kobe", sub.id).times_sent == 1)
            doc = await store.get_document(KIND, "kobe", sub.id)
            assert doc is not None and doc["timesSent"] == 1
            fresh = Registry(sub)
            async with running(Notifier(store, fresh, render, make_settings())) as notifier:
                assert fresh.counters("kobe", sub.id).times_sent == 1
                del fresh.subs[("kobe", sub.id)]
                notifier.subscription_removed("kobe", sub.id)
                await asyncio.sleep(0.1)
            assert await store.get_document(KIND, "kobe", sub.id) is None
        finally:
            await store.close()


async def test_periodic_subscription_sends_current_state(sqlite_path: str) -> None:
    async with receiver() as rec:
        store = await _open(sqlite_path)
        try:
            for n in range(3):
                await _put(store, n, value=n)
            other = entity(99)
            other["type"] = ["https://example.org/Other"]
            await store.write("", [other["id"]], lambda current: WriteSet(upserts=[other]))
            selectors = (Selector(types=TypeExpr((frozenset({TYPE}),))),)
            sub = subscription(rec.url(), selectors=selectors, time_interval=0.3)
            registry = Registry(sub)
            notifier = Notifier(store, registry, render, make_settings())
            async with running(notifier):
                await rec.wait_for(lambda r: len(r) == 1)
                await _put(store, 0, value=100)            # the next one shows the new state
                await rec.wait_for(lambda r: len(r) == 2)
                sub.time_interval = None               # no longer periodic: its task stops
                notifier.subscription_changed(sub)
                await asyncio.sleep(0.6)
            assert len(rec.received) == 2
            first, second = (r.body["data"] for r in rec.received)
            assert [e["id"] for e in first] == [f"urn:ngsi-ld:Parking:{n}" for n in range(3)]
            values = {e["id"]: e["attrs"]["https://example.org/free"][0]["value"] for e in second}
            assert values["urn:ngsi-ld:Parking:0"] == 100
        finally:
            await store.close()


async def test_paused_periodic_subscription_sends_nothing() -> None:
    async with receiver() as rec:
        store = MemoryStore(entities=[entity(1)])
        sub = subscription(rec.url(), time_interval=0.1)
        registry = Registry(sub)
        registry.paused.add(sub.id)
        notifier = Notifier(store, registry, render, make_settings())
        async with running(notifier):
            await asyncio.sleep(0.4)
            assert rec.received == []
            registry.paused.clear()
            await rec.wait_for(lambda r: len(r) >= 1)


async def test_metrics_shape() -> None:
    notifier = Notifier(MemoryStore(), Registry(), render, make_settings())
    async with running(notifier):
        metrics = notifier.metrics()
    assert {"queued", "inFlight", "delivered", "failed", "givenUp", "backlog"} <= set(metrics)


class Matches:
    """A matcher that fires the same ``count`` subscriptions for every change."""

    def __init__(self, count: int) -> None:
        self.fired = [(f"urn:ngsi-ld:Subscription:s{i}", "attributeUpdated") for i in range(count)]

    def match(self, tenant: str, change: Change, kinds: dict[str, str]) -> list[tuple[str, str]]:
        return list(self.fired)


async def test_a_wide_fan_out_is_stored_once_as_a_set(sqlite_path: str) -> None:
    from cityos.data.ngsild.events import FANOUT, BrokerEvents

    store = await _open(sqlite_path)
    try:
        store.observer = BrokerEvents(history=False, matcher=Matches(100))   # nobody delivers
        for n in range(5):
            await _put(store, n)
        store.observer = BrokerEvents(history=False, matcher=Matches(2))
        await _put(store, 99)
    finally:
        await store.close()
    with contextlib.closing(sqlite3.connect(sqlite_path)) as conn:
        bodies = [orjson.loads(b) for (b,) in conn.execute("SELECT body FROM outbox ORDER BY seq")]
        sets = conn.execute("SELECT id, doc FROM documents WHERE kind = ?", (FANOUT,)).fetchall()
    wide, narrow = bodies[:5], bodies[5]
    assert len(sets) == 1                                   # one set for the five rows
    key, doc = sets[0][0], orjson.loads(sets[0][1])
    assert all(b["fanout"] == key and "subs" not in b for b in wide)
    assert len(doc["subs"]) == 100 and doc["subs"][0] == ["urn:ngsi-ld:Subscription:s0",
                                                          "attributeUpdated"]
    assert "fanout" not in narrow and len(narrow["subs"]) == 2   # short lists stay inline


class FailsOnce:
    """Computes its effects, then fails the first write (as a failing statement would)."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.failed = inner, False

    def effects(self, tenant: str, changes: list[Change]) -> Effects:
        effects: Effects = self.inner.effects(tenant, changes)
        if not self.failed:
            self.failed = True
            raise RuntimeError("the write fails after its effects were computed")
        return effects

    def committed(self, tenant: str, effects: Effects) -> None:
        self.inner.committed(tenant, effects)


async def test_a_set_rolled_back_with_its_write_is_written_again(sqlite_path: str) -> None:
    from cityos.data.ngsild.events import FANOUT, BrokerEvents

    store = await _open(sqlite_path)
    try:
        store.observer = FailsOnce(BrokerEvents(history=False, matcher=Matches(10)))
        with pytest.raises(RuntimeError):
            await _put(store, 1)
        await _put(store, 2)                 # must write the set again: the first rolled back
    finally:
        await store.close()
    with contextlib.closing(sqlite3.connect(sqlite_path)) as conn:
        sets = conn.execute("SELECT count(*) FROM documents WHERE kind = ?",
                            (FANOUT,)).fetchone()[0]
        rows = conn.execute("SELECT count(*) FROM outbox").fetchone()[0]
    assert (sets, rows) == (1, 1)
