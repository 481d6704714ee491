"""SQLite's history series (``sqlite_series.py``): ids valid only once committed, the bounded
writer cache, and the one-time migration from the text-keyed history layout."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from cityos.core.settings import Settings
from cityos.data.ngsild.model import DEFAULT_VOCAB
from cityos.data.ngsild.store.base import HistoryRow, TemporalEntityRow
from cityos.data.ngsild.store.history_schema import SQLITE_SCHEMA
from cityos.data.ngsild.store.sqlite import SQLiteEntityStore
from cityos.data.ngsild.store.sqlite_series import SeriesIds, migrate_to_series
from cityos.data.ngsild.store.temporal_base import Buckets, Window
from tests.conftest import started_app

SENSOR = "urn:ngsi-ld:Sensor:1"
TEMP, HUMIDITY, WIND = (DEFAULT_VOCAB + name for name in ("temperature", "humidity", "wind"))
T0 = 1_795_597_200_000_000      # 2026-11-25T09:00:00Z
HOUR = 3_600_000_000


def row(attr: str, value: Any, t: int, n: int) -> HistoryRow:
    return HistoryRow(entity_id=SENSOR, attr=attr, dataset_id="",
                      instance_id=f"urn:ngsi-ld:attribute:instance:{attr[-4:]}-{n}",
                      observed_at=t, created_at=t, modified_at=t, deleted=False,
                      doc={"type": "Property", "value": value})


RECORD = TemporalEntityRow(entity_id=SENSOR, types=[DEFAULT_VOCAB + "Sensor"], scope=None,
                           created_at=T0, modified_at=T0)


async def values(file_store: SQLiteEntityStore, attr: str) -> list[Any]:
    rows = await file_store.temporal_instances("", SENSOR, attr, "observedAt", Window(), False, 100)
    return [r.doc["value"] for r in rows]


# -- ids learnt by a write that rolled back ------------------------------------------------------
async def test_series_of_a_failed_write_leaves_no_stale_id(file_store: SQLiteEntityStore) -> None:
    # the second row cannot be stored after the first one's series was inserted: the write
    # rolls back, and with it both series rows
    unstorable = row(HUMIDITY, object(), T0, 2)
    with pytest.raises(TypeError):
        await file_store.temporal_write("", RECORD, [row(TEMP, 20.5, T0, 1), unstorable])
    # a new series now gets the number the rolled-back one had; a cached stale id would put
    # the next temperature into the wind's series
    await file_store.temporal_write("", RECORD, [row(WIND, 3.0, T0 + HOUR, 3)])
    await file_store.temporal_write("", RECORD, [row(TEMP, 21.0, T0 + 2 * HOUR, 4)])
    assert await values(file_store, TEMP) == [21.0]
    assert await values(file_store, WIND) == [3.0]
    assert await file_store.temporal_attributes("", SENSOR) == sorted([TEMP, WIND])


def test_rolled_back_ids_are_never_cached() -> None:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.executescript(SQLITE_SCHEMA)
    series = SeriesIds()
    conn.execute("BEGIN")
    first = series.sid(conn, "", SENSOR, TEMP)
    assert series.sid(conn, "", SENSOR, TEMP) == first      # pending ids serve their own group
    conn.execute("ROLLBACK")
    series.rolled_back()
    conn.execute("BEGIN")
    assert series.sid(conn, "", SENSOR, WIND) == first      # the number is handed out again
    temperature = series.sid(conn, "", SENSOR, TEMP)
    conn.execute("COMMIT")
    series.committed()
    assert temperature != first
    stored = dict(conn.execute("SELECT attr, sid FROM history_series").fetchall())
    assert stored == {WIND: first, TEMP: temperature}


def test_cache_keeps_a_bounded_number_of_entities() -> None:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.executescript(SQLITE_SCHEMA)
    series = SeriesIds(limit=2)
    ids = {}
    for n in range(3):
        ids[n] = series.sid(conn, "", f"urn:ngsi-ld:Sensor:{n}", TEMP)
        series.committed()
    assert len(series._committed) == 2 and ("", "urn:ngsi-ld:Sensor:0") not in series._committed
    # a dropped entity's id is looked up again, not created twice
    assert series.sid(conn, "", "urn:ngsi-ld:Sensor:0", TEMP) == ids[0]
    assert conn.execute("SELECT count(*) FROM history_series").fetchone()[0] == 3


async def test_deleted_entity_gets_new_series(file_store: SQLiteEntityStore) -> None:
    await file_store.temporal_write("", RECORD, [row(TEMP, 20.5, T0, 1)])
    assert await file_store.temporal_delete("", SENSOR)
    await file_store.temporal_write("", RECORD, [row(WIND, 1.0, T0, 2)])     # may reuse the number
    await file_store.temporal_write("", RECORD, [row(TEMP, 22.0, T0 + HOUR, 3)])
    assert await values(file_store, TEMP) == [22.0]
    assert await values(file_store, WIND) == [1.0]


# -- migration from the text-keyed layout ---------------------------------------------------------
# attr_history as it was before history_series (written out here: the code no longer has it)
OLD_LAYOUT = """
CREATE TABLE temporal_entities (
    tenant TEXT NOT NULL, id TEXT NOT NULL, types TEXT NOT NULL, scope TEXT,
    created_at INTEGER NOT NULL, modified_at INTEGER NOT NULL, deleted_at INTEGER,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
CREATE TABLE attr_history (
    rid INTEGER PRIMARY KEY, tenant TEXT NOT NULL, entity_id TEXT NOT NULL, attr TEXT NOT NULL,
    dataset_id TEXT NOT NULL, instance_id TEXT NOT NULL, observed_at INTEGER,
    created_at INTEGER NOT NULL, modified_at INTEGER NOT NULL, deleted INTEGER NOT NULL,
    doc TEXT NOT NULL,
    num REAL GENERATED ALWAYS AS (CASE WHEN json_type(doc, '$.value') IN ('integer', 'real')
        THEN json_extract(doc, '$.value') END) STORED
);
CREATE INDEX attr_history_created ON attr_history (tenant, entity_id, attr, created_at);
CREATE INDEX attr_history_obs_cover ON attr_history
    (tenant, entity_id, attr, coalesce(observed_at, created_at), deleted, dataset_id, num);
CREATE TABLE tenants (name TEXT PRIMARY KEY) WITHOUT ROWID;
INSERT INTO tenants VALUES ('kobe');
"""


def old_database(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.executescript(OLD_LAYOUT)
    types = orjson.dumps([DEFAULT_VOCAB + "Sensor"]).decode()
    for tenant in ("", "kobe"):
        conn.execute("INSERT INTO temporal_entities VALUES (?, ?, ?, NULL, ?, ?, NULL)",
                     (tenant, SENSOR, types, T0, T0 + 3 * HOUR))
    readings = [("", TEMP, 20.5), ("", HUMIDITY, "dry"), ("kobe", TEMP, 7), ("", TEMP, 21.5),
                ("", TEMP, 23)]
    for n, (tenant, attr, value) in enumerate(readings):
        t = T0 + n * HOUR
        doc = {"type": "Property", "value": value, "observedAt": "x", "createdAt": "x",
               "modifiedAt": "x"}
        conn.execute(
            "INSERT INTO attr_history (tenant, entity_id, attr, dataset_id, instance_id, "
            "observed_at, created_at, modified_at, deleted, doc) VALUES (?, ?, ?, '', ?, ?, ?, ?, "
            "0, ?)", (tenant, SENSOR, attr, f"urn:ngsi-ld:attribute:instance:old-{n}", t, t, t,
                      orjson.dumps(doc).decode()))
    conn.commit()
    conn.close()


def columns(path: Path, table: str) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [r[1] for r in conn.execute(f"SELECT * FROM pragma_table_info('{table}')")]


async def test_old_history_layout_is_migrated_at_open(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old_database(path)
    settings = Settings.load(database_url=f"sqlite:///{path}")
    async with started_app(settings) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://cityos.test") as client:
            found = await client.get(f"/ngsi-ld/v1/temporal/entities/{SENSOR}")
            assert found.status_code == 200, found.text
            body = found.json()
            assert [i["value"] for i in body["temperature"]] == [20.5, 21.5, 23]
            assert [i["value"] for i in body["humidity"]] == ["dry"]
            kobe = await client.get(f"/ngsi-ld/v1/temporal/entities/{SENSOR}",
                                    headers={"NGSILD-Tenant": "kobe"})
            assert kobe.status_code == 200, kobe.text
            assert [i["value"] for i in kobe.json()["temperature"]] == [7]
            # the numbers were carried over to the aggregation column
            total = await client.get(f"/ngsi-ld/v1/temporal/entities/{SENSOR}", params={
                "options": "aggregatedValues", "aggrMethods": "sum", "attrs": "temperature"})
            assert total.status_code == 200, total.text
            assert total.json()["temperature"]["sum"][0][0] == 65.0
    assert "sid" in columns(path, "attr_history") and "tenant" not in columns(path, "attr_history")
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM history_series").fetchone()[0] == 3
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        assert "attr_history_by_text" not in names


async def test_migrated_history_takes_new_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old_database(path)
    for n in range(2):          # the second open finds nothing to migrate
        file_store = SQLiteEntityStore(str(path))
        await file_store.open()
        try:
            rows = await file_store.temporal_instances("", SENSOR, TEMP, "observedAt", Window(), True, 1)
            last = rows[0].t
            await file_store.temporal_write("", RECORD, [row(TEMP, 30 + n, last + HOUR, 100 + n)])
            bounds = await file_store.temporal_bounds("", SENSOR, TEMP, "observedAt", Window())
            assert bounds is not None and bounds[1] == last + HOUR
            sums = await file_store.temporal_aggregate("", SENSOR, TEMP, "observedAt", Window(), bounds,
                                                  Buckets(origin=bounds[0]), frozenset({"sum"}))
            assert [b.numbers for b in sums] == [len(await values(file_store, TEMP))]
        finally:
            await file_store.close()
    assert temperature_rows(path) == 5
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM history_series").fetchone()[0] == 3


def temperature_rows(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        # new rows wait in history_pending before they move to attr_history
        count: int = conn.execute(
            "SELECT count(*) FROM (SELECT sid FROM attr_history UNION ALL "
            "SELECT sid FROM history_pending) h JOIN history_series s ON s.sid = h.sid "
            "WHERE s.tenant = '' AND s.attr = ?", (TEMP,)).fetchone()[0]
    return count


def test_failed_migration_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old_database(path)
    with sqlite3.connect(path) as conn:     # fails the copy, after the old table was renamed
        conn.execute("CREATE TABLE history_series (x)")
    conn = sqlite3.connect(path, isolation_level=None)
    with pytest.raises(sqlite3.OperationalError):
        migrate_to_series(conn)
    assert not conn.in_transaction
    conn.close()
    assert "tenant" in columns(path, "attr_history")
    assert columns(path, "attr_history_by_text") == []
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM attr_history").fetchone()[0] == 5
