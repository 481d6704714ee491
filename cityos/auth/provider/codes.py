"""Authorization codes: issued by the authorize endpoint, consumed once by the token endpoint.

The contract between the browser side (``auth/login``: login, MFA, approval, ``/auth/authorize``)
and the token side (``auth/provider``: ``/auth/token``).  A code is 256 random bits, stored only as
its SHA-256, lives 60 s, and is consumed by one compare-and-set (``used_at IS NULL``), so two
concurrent exchanges cannot both succeed (RFC 6749 §4.1.2, §10.5).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

import orjson

from cityos.auth.directory import hash_secret
from cityos.core.sqldb import Sql, SqlDb

CODE_TTL = 60

CODES_DDL = """
CREATE TABLE IF NOT EXISTS auth_codes (
    code_hash TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    scope TEXT NOT NULL,
    account_id TEXT NOT NULL,
    session_id TEXT,
    nonce TEXT,
    code_challenge TEXT NOT NULL,
    auth_time BIGINT NOT NULL,
    acr TEXT NOT NULL,
    amr TEXT NOT NULL,
    grant_id TEXT,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX IF NOT EXISTS auth_codes_expires ON auth_codes (expires_at);
"""


@dataclass(frozen=True)
class CodeRecord:
    """What the user approved when the code was issued."""

    client_id: str
    redirect_uri: str
    scope: str
    account_id: str
    session_id: str | None
    nonce: str | None
    code_challenge: str        # S256 challenge (RFC 7636): the only method accepted
    auth_time: int
    acr: str
    amr: tuple[str, ...]
    grant_id: str | None       # set by the exchange; a reused code revokes this grant


async def issue_code(db: SqlDb | Sql, *, client_id: str, redirect_uri: str, scope: str,
                     account_id: str, session_id: str | None, nonce: str | None,
                     code_challenge: str, auth_time: int, acr: str, amr: tuple[str, ...]) -> str:
    """Store a new code and return it (the only time it exists in clear)."""
    code = secrets.token_urlsafe(32)
    await db.execute(
        "INSERT INTO auth_codes (code_hash, client_id, redirect_uri, scope, account_id, session_id, "
        "nonce, code_challenge, auth_time, acr, amr, expires_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        hash_secret(code), client_id, redirect_uri, scope, account_id, session_id, nonce,
        code_challenge, auth_time, acr, orjson.dumps(list(amr)).decode(),
        int(time.time()) + CODE_TTL)
    return code


async def consume_code(db: SqlDb | Sql, code: str) -> tuple[CodeRecord | None, bool]:
    """(record, reused): the record when this call consumed a live code; ``reused`` when the code
    exists but was already used (the caller revokes ``record.grant_id``'s family)."""
    now = int(time.time())
    digest = hash_secret(code)
    rows = await db.fetch("UPDATE auth_codes SET used_at = ? WHERE code_hash = ? AND used_at IS NULL "
                          "AND expires_at > ? RETURNING *", now, digest, now)
    if rows:
        return _record(rows[0]), False
    row = await db.fetchrow("SELECT * FROM auth_codes WHERE code_hash = ?", digest)
    if row is not None and row["used_at"] is not None:
        return _record(row), True
    return None, False


async def bind_grant(db: SqlDb | Sql, code: str, grant_id: str) -> None:
    """Remember the grant the code's exchange created (so its reuse can revoke it)."""
    await db.execute("UPDATE auth_codes SET grant_id = ? WHERE code_hash = ?", grant_id,
                     hash_secret(code))


def _record(row: dict[str, Any]) -> CodeRecord:
    return CodeRecord(client_id=row["client_id"], redirect_uri=row["redirect_uri"],
                      scope=row["scope"], account_id=row["account_id"],
                      session_id=row["session_id"], nonce=row["nonce"],
                      code_challenge=row["code_challenge"], auth_time=int(row["auth_time"]),
                      acr=row["acr"], amr=tuple(orjson.loads(row["amr"])),
                      grant_id=row["grant_id"])
