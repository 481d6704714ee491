"""The audit log's table on both engines (ADR 0012 §11).

``seq`` orders records as they were stored: SQLite's ``INTEGER PRIMARY KEY AUTOINCREMENT`` and
PostgreSQL's ``BIGSERIAL`` both hand out increasing numbers inside the inserting transaction, so
readers page "newest first" by ``seq`` without ties.  ``at`` is epoch milliseconds (two records of
one request must stay distinguishable in time); ``targets`` and ``detail`` are JSON in ``TEXT``.
Every other statement is shared SQL (``core/sqldb.py``).
"""

_COLUMNS = """
    id TEXT NOT NULL,
    at BIGINT NOT NULL,
    event TEXT NOT NULL,
    actor_kind TEXT NOT NULL,
    actor_sub TEXT NOT NULL,
    client_id TEXT,
    processor_org TEXT,
    purpose TEXT,
    tenant TEXT NOT NULL DEFAULT '',
    owner_id TEXT,
    category TEXT,
    targets TEXT NOT NULL DEFAULT '[]',
    request_id TEXT,
    outcome TEXT NOT NULL DEFAULT 'ok',
    detail TEXT NOT NULL DEFAULT '{}'
"""

_INDEXES = """
CREATE INDEX IF NOT EXISTS audit_log_owner ON audit_log (owner_id, at);
CREATE INDEX IF NOT EXISTS audit_log_actor ON audit_log (actor_sub, at);
CREATE INDEX IF NOT EXISTS audit_log_processor ON audit_log (processor_org, purpose, at);
"""

AUDIT_DDL = {
    "sqlite": "CREATE TABLE IF NOT EXISTS audit_log (\n    seq INTEGER PRIMARY KEY AUTOINCREMENT,"
              + _COLUMNS + ");" + _INDEXES
              + "CREATE INDEX IF NOT EXISTS audit_log_at ON audit_log (at);\n",
    # BRIN: rows arrive in time order, so a block-range index on ``at`` is tiny and serves the
    # retention purge and time-window reads as well as a B-tree would
    "postgresql": "CREATE TABLE IF NOT EXISTS audit_log (\n    seq BIGSERIAL PRIMARY KEY,"
                  + _COLUMNS + ");" + _INDEXES
                  + "CREATE INDEX IF NOT EXISTS audit_log_at ON audit_log USING BRIN (at);\n",
}

# The calendar month (Japan time, UTC+9 all year) of ``at``, for the provision report.
MONTH_OF_AT = {
    "sqlite": "strftime('%Y-%m', at / 1000 + 32400, 'unixepoch')",
    "postgresql": "to_char(to_timestamp(at / 1000 + 32400) AT TIME ZONE 'UTC', 'YYYY-MM')",
}
