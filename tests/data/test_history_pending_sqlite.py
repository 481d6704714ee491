"""SQLite's pending history rows (``history_pending``): new rows wait there and move to the
indexed ``attr_history`` a series at a time; every read sees both and every edit changes both."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from cityos.data.ngsild.model import DEFAULT_VOCAB
from cityos.data.ngsild.store.base import HistoryRow, TemporalEntityRow
from cityos.data.ngsild.store.sqlite import SQLiteEntityStore
from cityos.data.ngsild.store.sqlite_series import MOVE_AT, SeriesIds
from cityos.data.ngsild.store.temporal_base import Buckets, Window

SENSOR = "urn:ngsi-ld:Sensor:p1"
TEMP, WIND = (DEFAULT_VOCAB + name for name in ("temperature", "wind"))
T0 = 1_795_597_200_000_000      # 2026-11-25T09:00:00Z
MINUTE = 60_000_000
RECORD = TemporalEntityRow(entity_id=SENSOR, types=[DEFAULT_VOCAB + "Sensor"], scope=None,
                           created_at=T0, modified_at=T0)
WRITES = 2 * MOVE_AT + 5        # two moves, then five rows left waiting


def row(attr: str, value: Any, t: int, n: int, *, created: int | None = None) -> HistoryRow:
    return HistoryRow(entity_id=SENSOR, attr=attr, dataset_id="", instance_id=f"urn:i:{n}",
                      observed_at=t, created_at=created if created is not None else t,
                      modified_at=t, deleted=False, doc={"type": "Property", "value": value})


def table_rows(path: str) -> tuple[int, int]:
    with sqlite3.connect(path) as conn:
        return (conn.execute("SELECT count(*) FROM attr_history").fetchone()[0],
                conn.execute("SELECT count(*) FROM history_pending").fetchone()[0])


async def write_series(file_store: SQLiteEntityStore) -> None:
    """``WRITES`` one-row writes of temperature, a minute apart, values 0, 1, 2, ..."""
    for n in range(WRITES):
        await file_store.temporal_write("", RECORD, [row(TEMP, n, T0 + n * MINUTE, n)])


async def values(file_store: SQLiteEntityStore, *, newest_first: bool = False, limit: int = 1000,
                 window: Window | None = None, timeproperty: str = "observedAt") -> list[Any]:
    rows = await file_store.temporal_instances("", SENSOR, TEMP, timeproperty, window or Window(),
                                          newest_first, limit)
    return [r.doc["value"] for r in rows]


async def test_rows_move_in_whole_series_batches(file_store: SQLiteEntityStore) -> None:
    await write_series(file_store)
    assert table_rows(file_store.path) == (2 * MOVE_AT, 5)
    assert await values(file_store) == list(range(WRITES))
    assert await values(file_store, newest_first=True, limit=7) == list(range(WRITES - 1, WRITES - 8, -1))


async def test_windows_and_bounds_span_both_tables(file_store: SQLiteEntityStore) -> None:
    await write_series(file_store)
    first_pending = 2 * MOVE_AT
    window = Window(start=T0 + (first_pending - 3) * MINUTE, end=T0 + (first_pending + 2) * MINUTE)
    assert await values(file_store, window=window) == list(range(first_pending - 3, first_pending + 2))
    assert await file_store.temporal_bounds("", SENSOR, TEMP, "observedAt", Window()) == (
        T0, T0 + (WRITES - 1) * MINUTE)
    # a window that holds only moved rows, and one that holds only pending ones
    assert await file_store.temporal_bounds("", SENSOR, TEMP, "observedAt", Window(end=T0 + MINUTE)) \
        == (T0, T0)
    late = Window(start=T0 + (WRITES - 2) * MINUTE)
    assert await file_store.temporal_bounds("", SENSOR, TEMP, "observedAt", late) == (
        T0 + (WRITES - 2) * MINUTE, T0 + (WRITES - 1) * MINUTE)


async def test_equal_times_keep_the_order_they_were_written_in(file_store: SQLiteEntityStore) -> None:
    # every row observed at the same instant: the moved ones come first, oldest first
    for n in range(MOVE_AT + 3):
        await file_store.temporal_write("", RECORD, [row(TEMP, n, T0, n)])
    assert table_rows(file_store.path) == (MOVE_AT, 3)
    assert await values(file_store) == list(range(MOVE_AT + 3))
    assert await values(file_store, newest_first=True, limit=5) == [18, 17, 16, 15, 14]


async def test_aggregation_counts_both_tables(file_store: SQLiteEntityStore) -> None:
    await write_series(file_store)
    span = (T0, T0 + (WRITES - 1) * MINUTE)
    methods = frozenset({"sum", "totalCount", "max", "min", "distinctCount"})
    [whole] = await file_store.temporal_aggregate("", SENSOR, TEMP, "observedAt", Window(), span,
                                             Buckets(origin=T0), methods)
    assert (whole.count, whole.numbers, whole.distinct) == (WRITES, WRITES, WRITES)
    assert (whole.total, whole.min_number, whole.max_number) == (sum(range(WRITES)), 0, WRITES - 1)
    # a period per minute (one statement per period), and periods too fine for that (GROUP BY)
    for period, step in ((MINUTE, 1), (MINUTE // 10_000, 10_000)):
        rows = await file_store.temporal_aggregate("", SENSOR, TEMP, "observedAt", Window(), span,
                                              Buckets(origin=T0, period=period), methods)
        assert sorted((b.bucket, b.total) for b in rows) == [
            (n * step, n) for n in range(WRITES)]


async def test_text_aggregates_see_pending_rows(file_store: SQLiteEntityStore) -> None:
    # strings: min / max come from the second phase, which reads the documents
    for n in range(MOVE_AT + 2):
        await file_store.temporal_write("", RECORD, [row(WIND, f"w{n:02}", T0 + n * MINUTE, n)])
    assert table_rows(file_store.path) == (MOVE_AT, 2)
    [agg] = await file_store.temporal_aggregate(
        "", SENSOR, WIND, "observedAt", Window(), (T0, T0 + (MOVE_AT + 1) * MINUTE),
        Buckets(origin=T0), frozenset({"min", "max", "distinctCount"}))
    assert (agg.min_text, agg.max_text, agg.distinct) == ("w00", f"w{MOVE_AT + 1:02}", MOVE_AT + 2)


async def test_edits_reach_both_tables(file_store: SQLiteEntityStore) -> None:
    await write_series(file_store)
    moved, pending = "urn:i:3", f"urn:i:{WRITES - 1}"
    for instance, value in ((moved, 300), (pending, 400)):
        assert await file_store.temporal_patch_instance(
            "", SENSOR, TEMP, instance, {"type": "Property", "value": value}, None, T0)
    found = await file_store.temporal_instance("", SENSOR, TEMP, pending)
    assert found is not None and found.doc["value"] == 400
    assert (await values(file_store))[3] == 300
    for instance in (moved, pending):
        assert await file_store.temporal_delete_instance("", SENSOR, TEMP, instance)
        assert await file_store.temporal_instance("", SENSOR, TEMP, instance) is None
    assert len(await values(file_store)) == WRITES - 2
    assert table_rows(file_store.path) == (2 * MOVE_AT - 1, 4)
    assert await file_store.temporal_delete_attribute("", SENSOR, TEMP, None) == WRITES - 2
    assert table_rows(file_store.path) == (0, 0)
    assert await file_store.temporal_attributes("", SENSOR) == []


async def test_an_attribute_with_pending_rows_only_is_listed(file_store: SQLiteEntityStore) -> None:
    await file_store.temporal_write("", RECORD, [row(WIND, 3.5, T0, 1)])
    assert table_rows(file_store.path) == (0, 1)
    assert await file_store.temporal_attributes("", SENSOR) == [WIND]


async def test_retention_and_entity_delete_purge_both(file_store: SQLiteEntityStore) -> None:
    await write_series(file_store)
    cutoff = T0 + (WRITES - 2) * MINUTE         # keeps the last two rows (both pending)
    assert await file_store.purge_history_before("", [SENSOR], cutoff) == WRITES - 2
    assert table_rows(file_store.path) == (0, 2)
    assert await values(file_store) == [WRITES - 2, WRITES - 1]
    assert await file_store.temporal_delete("", SENSOR)
    assert table_rows(file_store.path) == (0, 0)


async def test_rows_waiting_at_restart_are_read_and_moved_later(tmp_path: Path) -> None:
    path = str(tmp_path / "store.db")
    first = SQLiteEntityStore(path)
    await first.open()
    for n in range(5):
        await first.temporal_write("", RECORD, [row(TEMP, n, T0 + n * MINUTE, n)])
    await first.close()
    second = SQLiteEntityStore(path)      # its counts start at zero: the move comes later
    await second.open()
    try:
        assert await values(second) == [0, 1, 2, 3, 4]
        for n in range(5, 5 + MOVE_AT):
            await second.temporal_write("", RECORD, [row(TEMP, n, T0 + n * MINUTE, n)])
        assert table_rows(path) == (5 + MOVE_AT, 0)     # the move took the older rows too
        assert await values(second) == list(range(5 + MOVE_AT))
    finally:
        await second.close()


async def test_a_large_write_is_stored_whole_and_in_order(file_store: SQLiteEntityStore) -> None:
    # 300 rows in one write: INSERT chunks of 256, 32, 8 and 4 rows, and the series is due
    many = [row(TEMP, n, T0 + n * MINUTE, n) for n in range(300)]
    await file_store.temporal_write("", RECORD, many)
    assert table_rows(file_store.path) == (300, 0)
    assert await values(file_store) == list(range(300))
    # nothing pending: aggregation reads attr_history alone, per period and grouped
    for period, step in ((MINUTE, 1), (MINUTE // 10_000, 10_000)):
        rows = await file_store.temporal_aggregate(
            "", SENSOR, TEMP, "observedAt", Window(), (T0, T0 + 299 * MINUTE),
            Buckets(origin=T0, period=period), frozenset({"sum"}))
        assert sorted((b.bucket, b.total) for b in rows) == [(n * step, n) for n in range(300)]
    # two series due in the same write move together; a third stays pending
    both = [row(attr, n, T0 + n * MINUTE, 1000 + n + i * 100)
            for n in range(MOVE_AT) for i, attr in enumerate((WIND, DEFAULT_VOCAB + "rain"))]
    await file_store.temporal_write("", RECORD, [*both, row(DEFAULT_VOCAB + "snow", 1, T0, 9999)])
    assert table_rows(file_store.path) == (300 + 2 * MOVE_AT, 1)


def test_due_counts_per_series_and_starts_over() -> None:
    series = SeriesIds()
    assert series.due([1] * (MOVE_AT - 1) + [2]) == []
    assert series.due([1, 2]) == [1]
    assert series.due([1] * MOVE_AT) == [1]
