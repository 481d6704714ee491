"""PostgreSQL: CityOS vacuums its own tables when the server's autovacuum is off.

Every attribute update leaves a dead row in ``entities`` (HOT, cheap) and one in ``attr_index``
(the value index: a changed value is a delete and an insert); delivered outbox rows are deleted.
Without VACUUM those dead rows stay in the indexes, and every later lookup walks past them:
measured on this project's bench machine (``autovacuum = off``), PostgreSQL's CPU per attribute
update went from ~1.0 ms to ~2.0 ms within 30 s of updates to 1,000 entities, and one VACUUM
brought it back.  A city whose DBA switched autovacuum off would see the broker slow down by the
minute, so the store checks ``SHOW autovacuum`` at start-up and, when it is off (setting
``pg_self_vacuum``: ``auto``), does what autovacuum would: every few seconds it reads
``pg_stat_user_tables`` and vacuums or analyzes each table that crossed autovacuum's default
thresholds.

* Only tables of the store's schema that its user owns, and no extension's tables (PostGIS's
  ``spatial_ref_sys``): VACUUM would skip the others with a warning and never reset their
  counters.
* The thresholds count what changed since this process last vacuumed or analyzed the table:
  dead rows that an old transaction still sees survive a VACUUM, and counting them again would
  vacuum the table every few seconds for nothing.
* The statements run on a connection of their own, without the pool's statement timeout: a
  large table may take minutes at autovacuum's pace (``vacuum_cost_delay = 2ms``), and it must
  neither be cancelled half-way nor hold a connection that requests wait for.
* ``SKIP_LOCKED`` lets several CityOS nodes on one database run this side by side: a table that
  another node is vacuuming is skipped, not waited for.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cityos.core.tasks import Repeating

if TYPE_CHECKING:
    import asyncpg

    from cityos.data.ngsild.store.postgres import Conn

log = logging.getLogger("cityos.store")

CHECK_SECONDS = 5.0
MODES = ("auto", "on", "off")

# autovacuum's defaults (PostgreSQL 13+): base threshold + scale factor x live rows
VACUUM_BASE, VACUUM_SCALE = 50, 0.2            # dead rows
INSERT_BASE, INSERT_SCALE = 1000, 0.2          # rows inserted since the last vacuum
ANALYZE_BASE, ANALYZE_SCALE = 50, 0.1          # rows changed since the last analyze

TABLE_STATS = (
    "SELECT quote_ident(s.schemaname) || '.' || quote_ident(s.relname), s.n_live_tup, "
    "s.n_dead_tup, s.n_ins_since_vacuum, s.n_mod_since_analyze "
    "FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid "
    "WHERE s.schemaname = current_schema() AND pg_has_role(c.relowner, 'USAGE') "
    "AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass "
    "AND d.objid = s.relid AND d.deptype = 'e') ORDER BY 1")


@dataclass(frozen=True)
class TableStats:
    """One row of ``pg_stat_user_tables``: what decides whether a table is due."""

    name: str              # schema-qualified and quoted
    live: int
    dead: int
    inserted: int          # since the last vacuum
    modified: int          # since the last analyze


def command_for(table: TableStats, since: TableStats | None = None) -> str | None:
    """The maintenance statement ``table`` is due for, if any (autovacuum's rules), counting
    only what changed after ``since`` (the table's counters right after this process last ran
    a statement on it)."""
    dead, inserted, modified = table.dead, table.inserted, table.modified
    if since is not None:
        dead, inserted, modified = (max(0, dead - since.dead), max(0, inserted - since.inserted),
                                    max(0, modified - since.modified))
    analyze = modified > ANALYZE_BASE + ANALYZE_SCALE * table.live
    if (dead > VACUUM_BASE + VACUUM_SCALE * table.live
            or inserted > INSERT_BASE + INSERT_SCALE * table.live):
        return f"VACUUM ({'ANALYZE, ' if analyze else ''}SKIP_LOCKED) {table.name}"
    if analyze:
        return f"ANALYZE (SKIP_LOCKED) {table.name}"
    return None


class SelfVacuum:
    """The periodic check of one store; ``connection`` lends a pooled connection."""

    def __init__(self, connection: Callable[[], AbstractAsyncContextManager[Conn]],
                 connect: Callable[[], Awaitable[asyncpg.Connection[asyncpg.Record]]],
                 mode: str = "auto",
                 check_seconds: float = CHECK_SECONDS) -> None:
        if mode not in MODES:
            raise ValueError(f"pg_self_vacuum must be one of {', '.join(MODES)}, not {mode!r}")
        self.connection, self.connect = connection, connect
        self.mode, self.check_seconds = mode, check_seconds
        self._repeating: Repeating | None = None
        self._since: dict[str, TableStats] = {}     # each table's counters after our last run

    @property
    def running(self) -> bool:
        return self._repeating is not None

    async def start(self) -> None:
        """Start the periodic check, unless the mode or the server's autovacuum says not to."""
        if self.mode == "off":
            return
        if self.mode == "auto":
            async with self.connection() as conn:
                if await conn.fetchval("SHOW autovacuum") != "off":
                    return
            log.info("PostgreSQL's autovacuum is off: CityOS vacuums its own tables every "
                     "%.0f s (CITYOS_PG_SELF_VACUUM=off leaves it to the DBA)", self.check_seconds)
        self._repeating = Repeating("postgres-self-vacuum", self.run_once, self.check_seconds,
                                    first_delay=self.check_seconds, log=log)
        self._repeating.start()

    async def stop(self) -> None:
        repeating, self._repeating = self._repeating, None
        if repeating is not None:
            await repeating.stop()

    async def run_once(self) -> list[str]:
        """Vacuum / analyze every table that is due; the statements run."""
        async with self.connection() as conn:
            tables = [TableStats(*row) for row in await conn.fetch(TABLE_STATS)]
        due = {t.name: c for t in tables
               if (c := command_for(t, self._since.get(t.name))) is not None}
        if not due:
            return []
        maintenance = await self.connect()
        try:
            # autovacuum's pace: a large table is vacuumed in steps, not in one burst
            await maintenance.execute("SET vacuum_cost_delay = '2ms'")
            for statement in due.values():
                await maintenance.execute(statement)
            # what the statements could not clear is the baseline of the next check
            for row in await maintenance.fetch(TABLE_STATS):
                if row[0] in due:
                    self._since[row[0]] = TableStats(*row)
        except BaseException:
            # cancelled (the store closes) or failed: asyncpg has asked the server to cancel
            # the statement; a graceful close would wait for a VACUUM to finish
            maintenance.terminate()
            raise
        await maintenance.close()
        log.debug("self-vacuum: %s", "; ".join(due.values()))
        return list(due.values())
