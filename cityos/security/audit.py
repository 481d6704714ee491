"""The audit log: who touched whose personal data, for which purpose, when (ADR 0012 §11).

Append-only: there is no update or delete API.  The only deleter is the retention purge
(``CITYOS_AUDIT_RETENTION``, an ISO 8601 duration, 3 years by default), run daily by this part.
:meth:`AuditLog.append` commits before it returns and raises when it cannot, so a caller that
audits before answering fails closed.  Blocks that write on the same :class:`SqlDb` (consents)
call :meth:`AuditLog.append_in` inside their own transaction: the change and its record commit
together or not at all.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from cityos.core.access import AuditRecord
from cityos.core.sqldb import Row, Sql, SqlDb
from cityos.core.tasks import Repeating
from cityos.security.schema import AUDIT_DDL, MONTH_OF_AT

log = logging.getLogger("cityos.audit")
MAX_TARGETS = 100
# events that provide personal data to a processor: what the public provision report counts
PROVISION_EVENTS = ("pd.read", "pd.notify")
_DURATION = re.compile(r"^P(?!$)(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?"
                       r"(?:T(?=\d)(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$")
# mean Gregorian year and month: a retention of P3Y keeps 3 x 365.2425 days
_YEAR, _MONTH, _DAY = 365.2425 * 86400, 365.2425 * 86400 / 12, 86400


def parse_retention(text: str) -> float:
    """Seconds of an ISO 8601 duration (``P3Y``, ``P18M``, ``P90D``, ``PT12H``); ValueError if bad."""
    match = _DURATION.match(text.strip()) if isinstance(text, str) else None
    if match is None or text.strip().endswith("T"):
        raise ValueError(f"audit_retention: {text!r} is not an ISO 8601 duration such as P3Y")
    y, mo, w, d, h, mi, s = (float(g) if g else 0.0 for g in match.groups())
    seconds = y * _YEAR + mo * _MONTH + (w * 7 + d) * _DAY + h * 3600 + mi * 60 + s
    if seconds <= 0:
        raise ValueError("audit_retention must be longer than zero")
    return seconds


def iso_ms(ms: int | None) -> str | None:
    """Epoch milliseconds as an ISO 8601 UTC time."""
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


@dataclass(frozen=True)
class AuditQuery:
    """Filters of an audit read; ``None`` leaves a field unfiltered."""

    owner_id: str | None = None
    actor: str | None = None
    organization: str | None = None
    purpose: str | None = None
    event: str | None = None          # exact, or a prefix ending in ``*`` (``consent.*``)
    tenant: str | None = None
    since_ms: int | None = None       # inclusive
    until_ms: int | None = None       # exclusive

    def where(self) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        args: list[Any] = []
        for column, value in (("owner_id", self.owner_id), ("actor_sub", self.actor),
                              ("processor_org", self.organization), ("purpose", self.purpose),
                              ("tenant", self.tenant)):
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        if self.event is not None:
            if self.event.endswith("*"):
                prefix = self.event[:-1]        # substr, not LIKE: no wildcards to escape
                clauses.append("substr(event, 1, ?) = ?")
                args.extend([len(prefix), prefix])
            else:
                clauses.append("event = ?")
                args.append(self.event)
        if self.since_ms is not None:
            clauses.append("at >= ?")
            args.append(self.since_ms)
        if self.until_ms is not None:
            clauses.append("at < ?")
            args.append(self.until_ms)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", args


def public_record(row: Row) -> dict[str, Any]:
    """A stored record as the audit APIs show it."""
    return {"seq": row["seq"], "id": row["id"], "at": iso_ms(row["at"]), "event": row["event"],
            "actorKind": row["actor_kind"], "actor": row["actor_sub"], "clientId": row["client_id"],
            "organization": row["processor_org"], "purpose": row["purpose"],
            "tenant": row["tenant"], "ownerId": row["owner_id"], "category": row["category"],
            "targets": orjson.loads(row["targets"]), "requestId": row["request_id"],
            "outcome": row["outcome"], "detail": orjson.loads(row["detail"])}


class AuditLog:
    """The ``audit_log`` table (implements :class:`cityos.core.access.AuditSink`)."""

    def __init__(self, db: SqlDb, retention: str = "P3Y", *,
                 clock: Callable[[], float] = time.time, purge_every: float = 86400.0) -> None:
        self.db = db
        self.retention = parse_retention(retention)   # a bad setting stops start-up
        self._clock = clock
        # not at the very start: start-up is busy enough, and a node restarted often still purges
        self._purger = Repeating("audit retention purge", self._purge, purge_every,
                                 first_delay=min(60.0, purge_every), log=log)

    # -- part life cycle -------------------------------------------------------------------------
    async def start(self) -> None:
        await self.db.script(AUDIT_DDL[self.db.engine])
        self._purger.start()

    async def stop(self) -> None:
        await self._purger.stop()

    async def _purge(self) -> None:
        gone = await self.purge_older_than(self.retention)
        if gone:
            log.info("audit retention: %d records older than the retention removed", gone)

    # -- writing ---------------------------------------------------------------------------------
    async def append(self, records: list[AuditRecord]) -> None:
        """Store ``records`` in one transaction (raises when they could not be stored)."""
        if not records:
            return
        async with self.db.transaction() as tx:
            await self.append_in(tx, records)

    async def append_in(self, tx: Sql, records: list[AuditRecord]) -> None:
        """Store ``records`` inside the caller's open transaction on the same database."""
        at = int(self._clock() * 1000)
        for r in records:
            await tx.execute(
                "INSERT INTO audit_log (id, at, event, actor_kind, actor_sub, client_id, "
                "processor_org, purpose, tenant, owner_id, category, targets, request_id, outcome, "
                "detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                str(uuid.uuid4()), at, r.event, r.actor_kind, r.actor_sub, r.client_id,
                r.processor_org, r.purpose, r.tenant, r.owner_id, r.category,
                orjson.dumps(list(r.targets[:MAX_TARGETS])).decode(), r.request_id, r.outcome,
                orjson.dumps(r.detail).decode())

    async def purge_older_than(self, seconds: float) -> int:
        """Delete records older than ``seconds`` (the retention job is the only deleter)."""
        cutoff = int((self._clock() - seconds) * 1000)
        return await self.db.execute("DELETE FROM audit_log WHERE at < ?", cutoff)

    # -- reading ---------------------------------------------------------------------------------
    async def query(self, query: AuditQuery, *, limit: int = 100, offset: int = 0) -> list[Row]:
        """Matching records, newest first."""
        where, args = query.where()
        return await self.db.fetch(f"SELECT * FROM audit_log{where} ORDER BY seq DESC "
                                   "LIMIT ? OFFSET ?", *args, limit, offset)

    async def report(self, query: AuditQuery, events: tuple[str, ...] = PROVISION_EVENTS
                     ) -> list[Row]:
        """Provisions per processor organization, purpose, category and month (Japan time).

        ``records`` counts audited provisions (one per request, owner and category), ``owners``
        the distinct residents whose data was provided: the figures a city's public report of
        provisions to third parties gives.
        """
        where, args = query.where()
        marks = ", ".join("?" for _ in events)
        where = (where + " AND " if where else " WHERE ") + f"event IN ({marks})"
        month = MONTH_OF_AT[self.db.engine]
        rows = await self.db.fetch(
            f"SELECT processor_org, purpose, category, {month} AS month, COUNT(*) AS records, "
            f"COUNT(DISTINCT owner_id) AS owners FROM audit_log{where} "
            f"GROUP BY processor_org, purpose, category, {month} "
            "ORDER BY month, processor_org, purpose, category", *args, *events)
        return [{"organization": r["processor_org"], "purpose": r["purpose"],
                 "category": r["category"], "month": r["month"], "records": int(r["records"]),
                 "owners": int(r["owners"])} for r in rows]
