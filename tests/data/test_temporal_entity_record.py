"""The temporal entity record (``temporal_entities``) is written only when what it holds changes,
on both engines: an attribute update appends history rows but leaves the record alone, while the
temporal API still shows createdAt / modifiedAt / deletedAt as the entity has them."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from cityos.data.ngsild.events import BrokerEvents, forget_temporal_record
from cityos.data.ngsild.history import attribute_changes, history_rows
from cityos.data.ngsild.store.base import Change, TemporalEntityRow
from cityos.data.ngsild.store.history_schema import TemporalEntityIfMissing

BASE = "/ngsi-ld/v1"
TEMPORAL = f"{BASE}/temporal/entities"
ROOM = "urn:ngsi-ld:Room:sannomiya-1"
NS = "https://uri.etsi.org/ngsi-ld/default-context/"


async def raw_record(app: Any, entity_id: str) -> tuple[int, int, int | None] | None:
    """(created_at, modified_at, deleted_at) exactly as stored, or None."""
    store = app.state.broker.store
    sql = "SELECT created_at, modified_at, deleted_at FROM temporal_entities WHERE id = "
    if hasattr(store, "_submit"):       # SQLite: read through the writer, which sees every commit
        row = await store._submit(lambda conn: conn.execute(sql + "?", (entity_id,)).fetchone())
    else:
        row = await store._run(lambda conn: conn.fetchrow(sql + "$1", entity_id))
    return None if row is None else (row[0], row[1], row[2])


async def sys_attrs(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get(f"{TEMPORAL}/{ROOM}", params={"options": "sysAttrs"})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def temperature(value: float) -> dict[str, Any]:
    return {"type": "Property", "value": value}


async def test_update_keeps_record_but_shows_modified_at(client: httpx.AsyncClient,
                                                         app: Any) -> None:
    created = await client.post(f"{BASE}/entities", json={
        "id": ROOM, "type": "Room", "temperature": temperature(20.5)})
    assert created.status_code == 201, created.text
    stored = await raw_record(app, ROOM)
    assert stored is not None and stored[2] is None
    first = await sys_attrs(client)

    for value in (21.0, 21.5):
        patched = await client.patch(f"{BASE}/entities/{ROOM}/attrs",
                                     json={"temperature": temperature(value)})
        assert patched.status_code == 204, patched.text
    assert await raw_record(app, ROOM) == stored           # not rewritten by the updates

    live = (await client.get(f"{BASE}/entities/{ROOM}", params={"options": "sysAttrs"})).json()
    shown = await sys_attrs(client)
    assert [i["value"] for i in shown["temperature"]] == [20.5, 21.0, 21.5]
    assert shown["createdAt"] == first["createdAt"] == live["createdAt"]
    assert shown["modifiedAt"] == live["modifiedAt"] > first["modifiedAt"]
    listed = (await client.get(TEMPORAL, params={"type": "Room", "options": "sysAttrs"})).json()
    assert [(e["id"], e["modifiedAt"]) for e in listed] == [(ROOM, live["modifiedAt"])]

    assert (await client.delete(f"{BASE}/entities/{ROOM}")).status_code == 204
    gone = await sys_attrs(client)
    assert gone["createdAt"] == first["createdAt"]
    assert gone["deletedAt"] == gone["modifiedAt"] >= live["modifiedAt"]
    record = await raw_record(app, ROOM)
    assert record is not None and record[2] is not None


async def test_update_after_temporal_delete_writes_a_new_record(client: httpx.AsyncClient,
                                                               app: Any) -> None:
    assert (await client.post(f"{BASE}/entities", json={
        "id": ROOM, "type": "Room", "temperature": temperature(18.0)})).status_code == 201
    assert (await client.delete(f"{TEMPORAL}/{ROOM}")).status_code == 204
    assert await raw_record(app, ROOM) is None
    assert (await client.get(f"{TEMPORAL}/{ROOM}")).status_code == 404
    patched = await client.patch(f"{BASE}/entities/{ROOM}/attrs",
                                 json={"temperature": temperature(18.5)})
    assert patched.status_code == 204, patched.text
    assert await raw_record(app, ROOM) is not None
    assert [i["value"] for i in (await sys_attrs(client))["temperature"]] == [18.5]


def _entity(types: list[str], scope: list[str] | None, value: float) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "id": ROOM, "type": types, "createdAt": "2026-11-25T00:00:00Z",
        "modifiedAt": "2026-11-25T01:00:00Z",
        "attrs": {NS + "temperature": [{"type": "Property", "value": value}]}}
    if scope is not None:
        entity["scope"] = scope
    return entity


@pytest.mark.parametrize(("after", "rewritten"), [
    (_entity([NS + "Room"], None, 2.0), False),                 # attribute update only
    (_entity([NS + "Room", NS + "Office"], None, 2.0), True),   # types changed
    (_entity([NS + "Room"], ["/kobe"], 1.0), True),             # scope changed
    (None, True),                                               # deleted
])
def test_which_writes_rewrite_the_record(after: dict[str, Any] | None, rewritten: bool) -> None:
    before = _entity([NS + "Room"], None, 1.0)
    change = Change(entity_id=ROOM, before=before, after=after)
    _rows, record = history_rows(change, attribute_changes(before, after), 1)
    assert isinstance(record, TemporalEntityRow)
    assert isinstance(record, TemporalEntityIfMissing) is not rewritten


@pytest.mark.parametrize(("after", "rewritten"), [
    (_entity([NS + "Room"], None, 2.0), False),
    (_entity([NS + "Room", NS + "Office"], None, 2.0), True),
    (_entity([NS + "Room"], ["/kobe"], 2.0), True),
    (None, True),
])
def test_a_known_record_is_not_even_built_for_a_plain_update(after: dict[str, Any] | None,
                                                             rewritten: bool) -> None:
    before = _entity([NS + "Room"], None, 1.0)
    change = Change(entity_id=ROOM, before=before, after=after)
    rows, record = history_rows(change, attribute_changes(before, after), 1, recorded=True)
    assert rows                                  # the history itself is always kept
    assert (record is not None) is rewritten
    if record is not None:
        assert not isinstance(record, TemporalEntityIfMissing)


def test_known_record_is_not_sent_again() -> None:
    events = BrokerEvents(history=True)
    created = Change(entity_id=ROOM, before=None, after=_entity([NS + "Room"], None, 1.0))
    first = events.effects("t", [created])
    assert len(first.temporal_entities) == 1 and first.history
    events.committed("t", first)
    update = Change(entity_id=ROOM, before=created.after, after=_entity([NS + "Room"], None, 2.0))
    second = events.effects("t", [update])
    assert second.history and second.temporal_entities == []
    forget_temporal_record("t", ROOM)          # the temporal API deleted the record
    assert isinstance(events.effects("t", [update]).temporal_entities[0], TemporalEntityIfMissing)
