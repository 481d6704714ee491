"""Consent records (implements :class:`cityos.core.access.ConsentChecker`; ADR 0012 §10).

A resident gives consent per data category, processor organization (a service provider) and
purpose (declared on one of that organization's clients).  :meth:`ConsentStore.granted` is read
by every personal-data access and is never cached, so a withdrawal applies to the next read on
every node.  Each change writes its audit record in the same transaction (same :class:`SqlDb`).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from cityos.auth.consent.receipt import SENSITIVE_CATEGORIES, build_receipt, iso_seconds
from cityos.auth.consent.schema import CONSENT_DDL
from cityos.core.access import ACCOUNT_URN, AuditRecord, Principal
from cityos.core.sqldb import Row, Sql, SqlDb
from cityos.core.tasks import Repeating
from cityos.security import AuditLog

log = logging.getLogger("cityos.consent")
DEFAULT_METHOD = "Web form /me/consents"


@dataclass(frozen=True)
class ConsentRecord:
    id: str
    owner_id: str
    category: str
    processor_org: str
    purpose: str
    state: str
    given_at: int
    expires_at: int | None
    withdrawn_at: int | None
    updated_at: int
    jurisdiction: str
    collection_method: str
    policy_url: str | None
    notice_version: str | None
    receipt: dict[str, Any]

    @classmethod
    def of(cls, row: Row) -> ConsentRecord:
        return cls(**{**row, "receipt": orjson.loads(row["receipt"] or "{}")})

    def state_at(self, now: float) -> str:
        """The state as of ``now``: a given consent past its end is expired even before the sweep."""
        if self.state == "given" and self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return self.state

    def public(self, now: float) -> dict[str, Any]:
        return {"id": self.id, "ownerId": self.owner_id, "category": self.category,
                "organization": self.processor_org, "purpose": self.purpose,
                "state": self.state_at(now), "givenAt": iso_seconds(self.given_at),
                "expiresAt": iso_seconds(self.expires_at),
                "withdrawnAt": iso_seconds(self.withdrawn_at),
                "updatedAt": iso_seconds(self.updated_at), "jurisdiction": self.jurisdiction,
                "collectionMethod": self.collection_method, "policyUrl": self.policy_url,
                "noticeVersion": self.notice_version,
                "sensitive": self.category in SENSITIVE_CATEGORIES,
                "receipt": f"/me/consents/{self.id}/receipt"}


def _actor(actor: Principal | None, owner_id: str) -> tuple[str, str, str | None]:
    if actor is None:                     # the resident themself (account uuid of the urn)
        return "user", owner_id.rsplit(":", 1)[-1], None
    return actor.kind, actor.subject, actor.client_id


class ConsentStore:
    """The ``auth_consents`` table, its expiry sweep and its audit records."""

    def __init__(self, db: SqlDb, audit: AuditLog | None = None, *,
                 clock: Callable[[], float] = time.time, sweep_every: float = 3600.0) -> None:
        self.db = db
        self.audit = audit
        self._clock = clock
        # the first sweep waits a period: start-up is busy enough
        self._sweeper = Repeating("consent expiry sweep", self.expire_due, sweep_every,
                                  first_delay=sweep_every, log=log)

    async def start(self) -> None:
        await self.db.script(CONSENT_DDL)
        self._sweeper.start()

    async def stop(self) -> None:
        await self._sweeper.stop()

    async def _audit(self, tx: Sql, records: list[AuditRecord]) -> None:
        if self.audit is not None and records:
            await self.audit.append_in(tx, records)

    # -- changes ---------------------------------------------------------------------------------
    async def give(self, owner_id: str, category: str, processor_org: str, purpose: str,
                   expires_at: int | None = None, *, collection_method: str = DEFAULT_METHOD,
                   policy_url: str | None = None, notice_version: str | None = None,
                   controller: str | None = None, controller_url: str | None = None,
                   service: str | None = None, purpose_text: str | None = None,
                   purpose_category: str = "ServiceProvision", jurisdiction: str = "JP",
                   actor: Principal | None = None, tenant: str = "",
                   request_id: str | None = None) -> ConsentRecord:
        """Record a consent; a live one for the same owner, category, processor and purpose is
        replaced (withdrawn) in the same transaction."""
        now = int(self._clock())
        consent_id = str(uuid.uuid4())
        receipt = build_receipt(
            receipt_id=consent_id, owner_id=owner_id, category=category, given_at=now,
            expires_at=expires_at, jurisdiction=jurisdiction, collection_method=collection_method,
            policy_url=policy_url, controller=controller or processor_org,
            controller_url=controller_url, service=service or processor_org,
            purpose_text=purpose_text or purpose, purpose_category=purpose_category)
        kind, sub, client = _actor(actor, owner_id)
        common: dict[str, Any] = {"actor_kind": kind, "actor_sub": sub, "client_id": client, "tenant": tenant,
                  "processor_org": processor_org, "purpose": purpose, "owner_id": owner_id,
                  "category": category, "request_id": request_id}
        async with self.db.transaction() as tx:
            replaced: list[Row] = []
            row: Row | None = None
            # PostgreSQL: a concurrent give may commit its live row between our UPDATE and INSERT;
            # ON CONFLICT keeps this transaction alive, and the next round withdraws that row
            while row is None:
                replaced += await tx.fetch(
                    "UPDATE auth_consents SET state = 'withdrawn', withdrawn_at = ?, "
                    "updated_at = ? WHERE owner_id = ? AND category = ? AND processor_org = ? "
                    "AND purpose = ? AND state = 'given' RETURNING id", now, now, owner_id,
                    category, processor_org, purpose)
                row = await tx.fetchrow(
                    "INSERT INTO auth_consents (id, owner_id, category, processor_org, purpose, "
                    "state, given_at, expires_at, withdrawn_at, updated_at, jurisdiction, "
                    "collection_method, policy_url, notice_version, receipt) "
                    "VALUES (?, ?, ?, ?, ?, 'given', ?, ?, NULL, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (owner_id, category, processor_org, purpose) "
                    "WHERE state = 'given' DO NOTHING RETURNING *",
                    consent_id, owner_id, category, processor_org, purpose, now, expires_at, now,
                    jurisdiction, collection_method, policy_url, notice_version,
                    orjson.dumps(receipt).decode())
            await self._audit(tx, [
                *(AuditRecord(event="consent.withdrawn", targets=(r["id"],),
                              detail={"replacedBy": consent_id}, **common) for r in replaced),
                AuditRecord(event="consent.given", targets=(consent_id,),
                            detail={"expiresAt": iso_seconds(expires_at)}, **common)])
        return ConsentRecord.of(row)

    async def withdraw(self, consent_id: str, owner_id: str, *, actor: Principal | None = None,
                       tenant: str = "", request_id: str | None = None) -> ConsentRecord | None:
        """Withdraw the owner's consent (idempotent); None when the owner has no such consent."""
        now = int(self._clock())
        kind, sub, client = _actor(actor, owner_id)
        async with self.db.transaction() as tx:
            row = await tx.fetchrow(
                "UPDATE auth_consents SET state = 'withdrawn', withdrawn_at = ?, updated_at = ? "
                "WHERE id = ? AND owner_id = ? AND state = 'given' RETURNING *",
                now, now, consent_id, owner_id)
            if row is None:
                row = await tx.fetchrow("SELECT * FROM auth_consents WHERE id = ? AND owner_id = ?",
                                        consent_id, owner_id)
                return None if row is None else ConsentRecord.of(row)
            await self._audit(tx, [AuditRecord(
                event="consent.withdrawn", actor_kind=kind, actor_sub=sub, client_id=client,
                tenant=tenant, processor_org=row["processor_org"], purpose=row["purpose"],
                owner_id=owner_id, category=row["category"], targets=(consent_id,),
                request_id=request_id)])
        return ConsentRecord.of(row)

    async def withdraw_all(self, owner_id: str, *, reason: str = "account erased") -> int:
        """Withdraw every live consent of ``owner_id`` (account erasure, AU-UM-1)."""
        return await self._end_all("withdrawn", "owner_id = ?", [owner_id],
                                   {"reason": reason})

    async def withdraw_account(self, account_id: str) -> None:
        """Erasure hook: withdraw every consent of the account ``account_id`` (a uuid)."""
        await self.withdraw_all(ACCOUNT_URN + account_id)

    async def expire_due(self) -> int:
        """Mark given consents past their end as expired (``granted`` ignores them already)."""
        return await self._end_all("expired", "expires_at IS NOT NULL AND expires_at <= ?",
                                   [int(self._clock())], {})

    async def _end_all(self, state: str, where: str, args: list[Any],
                       detail: dict[str, Any]) -> int:
        now = int(self._clock())
        stamp = ", withdrawn_at = ?" if state == "withdrawn" else ""
        async with self.db.transaction() as tx:
            rows = await tx.fetch(
                f"UPDATE auth_consents SET state = ?, updated_at = ?{stamp} "
                f"WHERE state = 'given' AND {where} "
                "RETURNING id, owner_id, category, processor_org, purpose",
                state, now, *([now] if stamp else []), *args)
            await self._audit(tx, [AuditRecord(
                event=f"consent.{state}", actor_kind="system", actor_sub="cityos",
                processor_org=r["processor_org"], purpose=r["purpose"], owner_id=r["owner_id"],
                category=r["category"], targets=(r["id"],), detail=detail) for r in rows])
        return len(rows)

    # -- reading ---------------------------------------------------------------------------------
    async def list(self, owner_id: str) -> list[ConsentRecord]:
        rows = await self.db.fetch("SELECT * FROM auth_consents WHERE owner_id = ? "
                                   "ORDER BY given_at DESC, id", owner_id)
        return [ConsentRecord.of(r) for r in rows]

    async def get(self, consent_id: str) -> ConsentRecord | None:
        row = await self.db.fetchrow("SELECT * FROM auth_consents WHERE id = ?", consent_id)
        return None if row is None else ConsentRecord.of(row)

    async def granted(self, processor_org: str, purpose: str | None,
                      categories: Iterable[str]) -> frozenset[tuple[str, str]]:
        """(owner urn, category) pairs with a given, unexpired consent: one statement, no cache.

        A token without a purpose is covered by no consent: consent is given for a purpose.
        """
        wanted = sorted(set(categories))
        if purpose is None or not wanted:
            return frozenset()
        marks = ", ".join("?" for _ in wanted)
        rows = await self.db.fetch(
            "SELECT owner_id, category FROM auth_consents WHERE processor_org = ? AND purpose = ? "
            f"AND state = 'given' AND category IN ({marks}) "
            "AND (expires_at IS NULL OR expires_at > ?)",
            processor_org, purpose, *wanted, int(self._clock()))
        return frozenset((r["owner_id"], r["category"]) for r in rows)
