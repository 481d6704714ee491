"""The parts of the dispatcher process that need no second process (ADR 0017)."""

from __future__ import annotations

import asyncio
import pickle
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from cityos.app import create_app
from cityos.core.settings import Settings
from cityos.data.ngsild.notify import wire
from cityos.data.ngsild.notify.process_link import DispatcherLink, process_mode_problem
from cityos.data.ngsild.notify.process_side import (
    POLLER_LAG,
    ForwardingStore,
    RowDecoder,
    SubscriptionIntake,
)
from cityos.data.ngsild.store import open_entity_store
from cityos.data.ngsild.store.base import Change, Effects, OutboxRow, WriteSet
from cityos.data.ngsild.subscriptions import SubscriptionRegistry
from cityos.data.ngsild.subscriptions.model import Endpoint, NotifyItem, Subscription
from cityos.data.ngsild.subscriptions.render import encode_notification
from cityos.data.ngsild.terms import TermMap
from cityos.data.ngsild.times import now_micros
from tests.conftest import _empty_postgres


def feed(data: bytes) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    return reader


async def test_frames_come_back_as_they_were_sent() -> None:
    reader = feed(wire.json_frame(wire.REMOVE, ["t", "urn:s:1"]) + wire.frame(wire.STOP))
    assert await wire.read_frame(reader) == (wire.REMOVE, b'["t","urn:s:1"]')
    assert await wire.read_frame(reader) == (wire.STOP, b"")
    with pytest.raises(asyncio.IncompleteReadError):
        await wire.read_frame(reader)


async def test_a_corrupt_length_is_refused_before_reading_it() -> None:
    with pytest.raises(ValueError, match="corrupt"):
        await wire.read_frame(feed(wire.HEADER.pack(0, wire.ROWS)))
    with pytest.raises(ValueError, match="corrupt"):
        await wire.read_frame(feed(wire.HEADER.pack(wire.MAX_FRAME + 1, wire.ROWS)))


def sub(sub_id: str, tm: TermMap, fmt: str = "normalized") -> Subscription:
    return Subscription(id=sub_id, tenant="", endpoint=Endpoint(uri="http://127.0.0.1/n"),
                        format=fmt, term_map=tm)


def test_subscriptions_sent_one_by_one_share_equal_term_maps_and_render_once() -> None:
    terms = {"level": "https://example.org/level"}
    first = pickle.loads(pickle.dumps(sub("urn:s:1", TermMap(dict(terms), None))))
    second = pickle.loads(pickle.dumps(sub("urn:s:2", TermMap(dict(terms), None))))
    other = pickle.loads(pickle.dumps(sub("urn:s:3", TermMap({"level": "urn:x"}, None))))
    intake = SubscriptionIntake()
    a, b, c = intake(first), intake(second), intake(other)
    assert a.term_map is b.term_map
    assert c.term_map is not a.term_map
    item = NotifyItem(entity={"id": "urn:e:1", "type": ["https://example.org/T"], "attrs": {}})
    encode_notification(a, [item])
    encode_notification(b, [item])
    assert len(item.rendered) == 1          # one serialization for both subscriptions


def test_a_render_key_number_from_the_server_is_not_used() -> None:
    tm = TermMap({}, None)
    server_side = sub("urn:s:1", tm, fmt="keyValues")
    encode_notification(server_side, [NotifyItem(entity={"id": "urn:e:1", "type": [],
                                                         "attrs": {}})])
    assert server_side.prepared is not None       # numbered in this (the server's) table
    received = SubscriptionIntake()(pickle.loads(pickle.dumps(server_side)))
    assert received.prepared is None


def test_rows_of_alike_changes_share_one_tuple_of_pairs_across_frames() -> None:
    pairs = (("urn:s:1", "attributeUpdated"), ("urn:s:2", "attributeUpdated"))
    decoder = RowDecoder()

    def frame_of(row_id: str) -> bytes:
        entity = {"id": "urn:e:1", "type": ["T"], "attrs": {}}
        return wire.json_frame(wire.ROWS, [[pairs], [[row_id, "", 0, entity, None, "now"]]])[5:]

    first, = decoder.rows(frame_of("r1"))
    second, = decoder.rows(frame_of("r2"))
    assert first.body["subs"] == pairs and first.body["subs"] is second.body["subs"]
    assert (first.id, first.kind, first.body["at"]) == ("r1", "notify", "now")


@pytest.mark.parametrize(("mode", "url", "problem"), [
    ("inline", "sqlite://", None),
    ("process", "sqlite:///tmp/city.db", None),
    ("process", "postgresql://db/city", None),
    ("process", "sqlite://", "in memory"),
    ("thread", "sqlite:///tmp/city.db", "inline or process"),
])
def test_the_notifier_setting_is_checked(mode: str, url: str, problem: str | None) -> None:
    settings = Settings.load(notifier=mode, database_url=url)
    found = process_mode_problem(settings)
    assert found is None if problem is None else problem in (found or "")


def test_a_server_refuses_to_start_with_a_notifier_it_cannot_run() -> None:
    with pytest.raises(ValueError, match="in memory"):
        create_app(Settings.load(notifier="process", database_url="sqlite://"))


class Rows:
    """An observer whose writes leave notify rows (nobody delivers them here)."""

    def effects(self, tenant: str, changes: list[Change]) -> Effects:
        return Effects(outbox=[OutboxRow(
            id=f"row-{uuid.uuid4().hex}", tenant=tenant, kind="notify",
            body={"subs": [["urn:s:1", "attributeUpdated"]], "entity": c.after,
                  "previous": None, "at": "2026-01-01T00:00:00.000000Z"},
            created_at=now_micros()) for c in changes])

    def committed(self, tenant: str, effects: Effects) -> None:
        pass


class DeletingServer:
    """The server's side of ``ServerLink.delete``: deletes with its own store."""

    def __init__(self, store: Any) -> None:
        self.store = store

    async def delete(self, ids: list[str]) -> None:
        await self.store.outbox_done(ids)


@pytest.fixture
async def two_stores(database_url: str, tmp_path: Path) -> AsyncIterator[tuple[Any, Any]]:
    """The server's store (its writes leave notify rows) and the dispatcher's own, on one
    database of the engine under test."""
    url = f"sqlite:///{tmp_path / 'city.db'}" if database_url == "sqlite://" else database_url
    if url.startswith("postgresql"):
        await _empty_postgres(url)              # the test database is shared
    settings = Settings.load(database_url=url)
    server_store, own_store = open_entity_store(settings), open_entity_store(settings)
    await server_store.open()
    await own_store.open()
    server_store.observer = Rows()
    try:
        yield server_store, own_store
    finally:
        await server_store.close()
        await own_store.close()


async def test_rows_the_server_deleted_are_no_longer_claimed_by_the_dispatcher(
        two_stores: tuple[Any, Any]) -> None:
    server_store, own_store = two_stores
    for n in range(3):
        doc = {"id": f"urn:ngsi-ld:T:{n}", "type": ["T"], "attrs": {}}
        await server_store.write("", [doc["id"]], lambda _, d=doc: WriteSet(upserts=[d]))
    dispatcher_store = ForwardingStore(own_store, DeletingServer(server_store))
    assert await dispatcher_store.outbox_pending() == []    # no watermark read yet
    assert own_store._claimed == set()                      # ... and nothing kept claimed
    dispatcher_store.watermark = now_micros() + POLLER_LAG  # every row is older now
    pending = await dispatcher_store.outbox_pending()
    assert len(pending) == 3 and len(own_store._claimed) == 3
    await dispatcher_store.outbox_done([r.id for r in pending])
    assert own_store._claimed == set()          # PostgreSQL would renew them forever
    assert await dispatcher_store.outbox_pending() == []     # deleted by the server


async def test_the_poller_takes_a_row_only_once_a_watermark_is_well_past_it(
        two_stores: tuple[Any, Any]) -> None:
    """A row read from the outbox ahead of its subscription's frame would find no subscription
    and be finished unsent: the poller waits until the stream has passed the row's time."""
    server_store, own_store = two_stores
    doc = {"id": "urn:ngsi-ld:T:1", "type": ["T"], "attrs": {}}
    await server_store.write("", [doc["id"]], lambda _: WriteSet(upserts=[doc]))
    dispatcher_store = ForwardingStore(own_store, DeletingServer(server_store))
    dispatcher_store.watermark = now_micros()      # the stream has just passed the row
    assert await dispatcher_store.outbox_pending() == []
    assert own_store._claimed == set()
    dispatcher_store.watermark += POLLER_LAG
    found = await dispatcher_store.outbox_pending()
    assert [row.body["entity"]["id"] for row in found] == ["urn:ngsi-ld:T:1"]

    # rows that came as frames are claimed: the poller does not read them again
    dispatcher_store.release_claims([row.id for row in found])
    dispatcher_store.add_claims([row.id for row in found])
    assert await dispatcher_store.outbox_pending() == []


async def test_a_face_the_dispatcher_cannot_rebuild_stops_start_up() -> None:
    registry = SubscriptionRegistry()
    registry.put(Subscription(id="urn:s:1", tenant="", face="ngsi-x",
                              endpoint=Endpoint(uri="http://127.0.0.1/n")))
    link = DispatcherLink(store=None, registry=registry,
                          settings=Settings.load(database_url="sqlite:///tmp/unused.db"))
    assert not link.delivers("ngsi-x") and link.delivers("ngsi-ld")
    with pytest.raises(RuntimeError, match="does not deliver ngsi-x subscriptions"):
        await link.start()
    link.codecs["ngsi-x"] = lambda sub: sub.id             # a face that says how it crosses
    assert link.delivers("ngsi-x")
