"""PostgreSQL: the store vacuums its own tables when the server's autovacuum is off
(store/postgres_vacuum.py): autovacuum's thresholds, and real VACUUMs on a real database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from cityos.core.settings import Settings
from cityos.data.ngsild.store import open_entity_store
from cityos.data.ngsild.store.postgres_vacuum import (
    TABLE_STATS,
    SelfVacuum,
    TableStats,
    command_for,
)


def test_dead_rows_beyond_a_fifth_of_the_live_ones_are_vacuumed() -> None:
    assert command_for(TableStats("attr_index", live=6000, dead=1250, inserted=0,
                                  modified=0)) is None
    assert command_for(TableStats("attr_index", live=6000, dead=1251, inserted=0,
                                  modified=0)) == "VACUUM (SKIP_LOCKED) attr_index"


def test_only_what_changed_since_the_last_run_counts() -> None:
    # 5,000 dead rows an old transaction still sees survived the last VACUUM: not again
    after_last = TableStats("attr_index", live=6000, dead=5000, inserted=0, modified=0)
    now = TableStats("attr_index", live=6000, dead=6000, inserted=0, modified=0)
    assert command_for(now, since=after_last) is None
    now = TableStats("attr_index", live=6000, dead=6300, inserted=0, modified=0)
    assert command_for(now, since=after_last) == "VACUUM (SKIP_LOCKED) attr_index"


def test_a_vacuum_also_analyzes_when_a_tenth_of_the_rows_changed() -> None:
    assert command_for(TableStats("entities", live=1000, dead=5000, inserted=0,
                                  modified=5000)) == "VACUUM (ANALYZE, SKIP_LOCKED) entities"


def test_an_insert_only_table_is_vacuumed_after_its_inserts_and_analyzed_before() -> None:
    # attr_history only grows: autovacuum (PostgreSQL 13+) vacuums it for its visibility map
    assert command_for(TableStats("attr_history", live=10_000, dead=0, inserted=3001,
                                  modified=3001)) == "VACUUM (ANALYZE, SKIP_LOCKED) attr_history"
    assert command_for(TableStats("attr_history", live=10_000, dead=0, inserted=2000,
                                  modified=2000)) == "ANALYZE (SKIP_LOCKED) attr_history"
    assert command_for(TableStats("attr_history", live=10_000, dead=0, inserted=900,
                                  modified=900)) is None


def test_an_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="pg_self_vacuum must be one of auto, on, off"):
        SelfVacuum(lambda: None, lambda: None, "sometimes")  # type: ignore[arg-type,return-value]


@pytest.fixture
async def pg_store(pg_url: str) -> AsyncIterator[Any]:
    store = open_entity_store(Settings.load(database_url=pg_url, pg_self_vacuum="off"))
    await store.open()
    try:
        yield store
    finally:
        await store.close()


async def _fetchval(url: str, sql: str) -> Any:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


@pytest.mark.parametrize("mode", ["auto", "on", "off"])
async def test_the_check_runs_as_the_mode_and_the_servers_autovacuum_say(
        pg_url: str, mode: str) -> None:
    autovacuum = await _fetchval(pg_url, "SHOW autovacuum")
    store = open_entity_store(Settings.load(database_url=pg_url, pg_self_vacuum=mode))
    await store.open()
    try:
        expected = {"on": True, "off": False, "auto": autovacuum == "off"}[mode]
        assert store.self_vacuum.running is expected
    finally:
        await store.close()
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "postgres-self-vacuum"]


STATS = "SELECT n_dead_tup, vacuum_count FROM pg_stat_user_tables WHERE relname = 'vacuum_probe'"


async def _probe_with_dead_rows(conn: asyncpg.Connection[Any], *, held_by: Any = None) -> None:
    """A table (autovacuum never touches it) with 1,900 dead rows, counted in the statistics."""
    await conn.execute("DROP TABLE IF EXISTS vacuum_probe")
    await conn.execute("CREATE TABLE vacuum_probe (n int PRIMARY KEY) "
                       "WITH (autovacuum_enabled = off)")
    await conn.execute("INSERT INTO vacuum_probe SELECT generate_series(1, 2000)")
    if held_by is not None:      # a snapshot older than the delete: its rows cannot go yet
        await held_by.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        await held_by.fetchval("SELECT count(*) FROM vacuum_probe")
    await conn.execute("DELETE FROM vacuum_probe WHERE n > 100")
    if await conn.fetchval("SELECT current_setting('server_version_num')::int") >= 150000:
        await conn.execute("SELECT pg_stat_force_next_flush()")
    for _ in range(100):         # the statistics are flushed once the backend idles
        dead, vacuums = await conn.fetchrow(STATS)
        if dead:
            break
        await asyncio.sleep(0.1)
    assert (dead, vacuums) == (1900, 0)


async def test_a_table_full_of_dead_rows_is_vacuumed_once(pg_store: Any, pg_url: str) -> None:
    conn = await asyncpg.connect(pg_url)
    try:
        await _probe_with_dead_rows(conn)
        done = await pg_store.self_vacuum.run_once()
        assert "VACUUM (ANALYZE, SKIP_LOCKED) public.vacuum_probe" in done
        assert tuple(await conn.fetchrow(STATS)) == (0, 1)
        # now clean: the next check leaves it alone
        assert not any("vacuum_probe" in s for s in await pg_store.self_vacuum.run_once())
    finally:
        await conn.execute("DROP TABLE IF EXISTS vacuum_probe")
        await conn.close()


async def test_dead_rows_an_old_transaction_holds_are_not_vacuumed_again(
        pg_store: Any, pg_url: str) -> None:
    conn, reader = await asyncpg.connect(pg_url), await asyncpg.connect(pg_url)
    try:
        await _probe_with_dead_rows(conn, held_by=reader)
        assert any("vacuum_probe" in s for s in await pg_store.self_vacuum.run_once())
        dead, vacuums = await conn.fetchrow(STATS)
        assert (dead, vacuums) == (1900, 1)          # the reader's snapshot still sees them
        assert not any("vacuum_probe" in s for s in await pg_store.self_vacuum.run_once())
        await reader.execute("ROLLBACK")
    finally:
        await reader.close()
        await conn.execute("DROP TABLE IF EXISTS vacuum_probe")
        await conn.close()


async def test_tables_of_extensions_are_left_alone(pg_store: Any, pg_url: str) -> None:
    # PostGIS's spatial_ref_sys (thousands of inserted rows) when PostGIS is installed
    conn = await asyncpg.connect(pg_url)
    try:
        members = {r[0] for r in await conn.fetch(
            "SELECT c.relname FROM pg_depend d JOIN pg_class c ON c.oid = d.objid "
            "WHERE d.classid = 'pg_class'::regclass AND d.deptype = 'e' AND c.relkind = 'r'")}
        listed = {r[0].split(".", 1)[1] for r in await conn.fetch(TABLE_STATS)}
    finally:
        await conn.close()
    assert "entities" in listed and "attr_history" in listed
    assert ("spatial_ref_sys" in members) is pg_store.postgis
    assert not members & listed
