"""PostgreSQL: CityOS vacuums its own tables when the server's autovacuum is off.

Every attribute update leaves a dead row in ``entities`` (HOT, cheap) and one in ``attr_index``
(the value index: a changed value is a delete and an insert); delivered outbox rows are deleted.
Without VACUUM those dead rows stay in the indexes, and every later lookup walks past them:
measured on this project's bench machine (``autovacuum = off``), PostgreSQL's CPU per attribute
update went from ~1.0 ms to ~2.0 ms within 30 s of updates to 1,000 entities, and one VACUUM
brought it back.  A city whose DBA switched autovacuum off would see the broker slow down by the
minute, so the store checks ``SHOW autovacuum`` at start-up and, when it is off (setting
``pg_self_vacuum``: ``auto``), does what autovacuum would: every few seconds it reads
``pg_stat_user_tables`` and vacuums or analyzes each table of its schema that crossed
autovacuum's default thresholds.

``SKIP_LOCKED`` lets several CityOS nodes on one database run this side by side: a table that
another node is vacuuming is skipped, not waited for.  The cost delay is autovacuum's default,
so a large table is vacuumed as gently as autovacuum would do it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cityos.core.tasks import Repeating

if TYPE_CHECKING:
    from cityos.data.ngsild.store.postgres import Conn

log = logging.getLogger("cityos.store")

CHECK_SECONDS = 5.0
MODES = ("auto", "on", "off")

# autovacuum's defaults (PostgreSQL 13+): base threshold + scale factor x live rows
VACUUM_BASE, VACUUM_SCALE = 50, 0.2            # dead rows
INSERT_BASE, INSERT_SCALE = 1000, 0.2          # rows inserted since the last vacuum
ANALYZE_BASE, ANALYZE_SCALE = 50, 0.1          # rows changed since the last analyze

TABLE_STATS = (
    "SELECT relname, n_live_tup, n_dead_tup, n_ins_since_vacuum, n_mod_since_analyze "
    "FROM pg_stat_user_tables WHERE schemaname = current_schema() ORDER BY relname")


@dataclass(frozen=True)
class TableStats:
    """One row of ``pg_stat_user_tables``: what decides whether a table is due."""

    name: str
    live: int
    dead: int
    inserted: int          # since the last vacuum
    modified: int          # since the last analyze


def command_for(table: TableStats) -> str | None:
    """The maintenance statement ``table`` is due for, if any (autovacuum's rules)."""
    quoted = '"' + table.name.replace('"', '""') + '"'
    if (table.dead > VACUUM_BASE + VACUUM_SCALE * table.live
            or table.inserted > INSERT_BASE + INSERT_SCALE * table.live):
        analyze = table.modified > ANALYZE_BASE + ANALYZE_SCALE * table.live
        return f"VACUUM ({'ANALYZE, ' if analyze else ''}SKIP_LOCKED) {quoted}"
    if table.modified > ANALYZE_BASE + ANALYZE_SCALE * table.live:
        return f"ANALYZE (SKIP_LOCKED) {quoted}"
    return None


class SelfVacuum:
    """The periodic check of one store; ``connection`` lends a pooled connection."""

    def __init__(self, connection: Callable[[], AbstractAsyncContextManager[Conn]],
                 mode: str = "auto", check_seconds: float = CHECK_SECONDS) -> None:
        if mode not in MODES:
            raise ValueError(f"pg_self_vacuum must be one of {', '.join(MODES)}, not {mode!r}")
        self.connection, self.mode, self.check_seconds = connection, mode, check_seconds
        self._repeating: Repeating | None = None

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
            rows = await conn.fetch(TABLE_STATS)
            due = [c for c in (command_for(TableStats(*row)) for row in rows) if c is not None]
            if not due:
                return []
            # autovacuum's pace: a large table is vacuumed in steps, not in one burst
            await conn.execute("SET vacuum_cost_delay = '2ms'")
            try:
                for statement in due:
                    await conn.execute(statement)
            finally:
                await conn.execute("RESET vacuum_cost_delay")
        log.debug("self-vacuum: %s", "; ".join(due))
        return due
