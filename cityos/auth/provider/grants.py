"""Grants and refresh tokens: one grant per code exchange = one refresh-token family.

A refresh token is 256 random bits stored as SHA-256; using it is one compare-and-set
(``used_at IS NULL``), so of two concurrent uses exactly one succeeds, and a token seen again
after its use is *reuse*: the whole family is revoked (RFC 9700 §2.2.2, §4.14.2).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any

import orjson

from cityos.auth.directory import hash_secret
from cityos.auth.provider.codes import CodeRecord
from cityos.core.sqldb import SqlDb

GRANTS_DDL = """
CREATE TABLE IF NOT EXISTS auth_grants (
    grant_id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    session_id TEXT,
    scope TEXT NOT NULL,
    auth_time BIGINT,
    acr TEXT,
    amr TEXT NOT NULL DEFAULT '[]',
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX IF NOT EXISTS auth_grants_account ON auth_grants (account_id);
CREATE INDEX IF NOT EXISTS auth_grants_session ON auth_grants (session_id);
CREATE INDEX IF NOT EXISTS auth_grants_client ON auth_grants (client_id);
CREATE TABLE IF NOT EXISTS auth_refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    grant_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX IF NOT EXISTS auth_refresh_tokens_grant ON auth_refresh_tokens (grant_id);
"""


@dataclass(frozen=True)
class Grant:
    grant_id: str
    account_id: str
    client_id: str
    session_id: str | None
    scope: str
    auth_time: int | None
    acr: str | None
    amr: tuple[str, ...]
    expires_at: int
    revoked_at: int | None

    def live(self, now: float) -> bool:
        return self.revoked_at is None and now < self.expires_at


def grant_id_for_code(code: str) -> str:
    """The id of the grant a code's exchange creates, known before the exchange finishes, so a
    reuse racing the first exchange can revoke it too (SHA-256 does not reveal the code)."""
    return "g-" + hashlib.sha256(b"cityos-grant:" + code.encode()).hexdigest()[:32]


def _grant(row: dict[str, Any]) -> Grant:
    return Grant(grant_id=row["grant_id"], account_id=row["account_id"],
                 client_id=row["client_id"], session_id=row["session_id"], scope=row["scope"],
                 auth_time=row["auth_time"], acr=row["acr"], amr=tuple(orjson.loads(row["amr"])),
                 expires_at=int(row["expires_at"]), revoked_at=row["revoked_at"])


async def create_grant(db: SqlDb, grant_id: str, code: CodeRecord, ttl: int, *,
                       revoked: bool = False) -> bool:
    """Store the grant of an exchanged code; False when a row exists (a reuse got there first
    and left a revoked tombstone: the exchange must fail)."""
    now = int(time.time())
    changed = await db.execute(
        "INSERT INTO auth_grants (grant_id, account_id, client_id, session_id, scope, auth_time, "
        "acr, amr, created_at, expires_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT DO NOTHING", grant_id, code.account_id, code.client_id, code.session_id,
        code.scope, code.auth_time, code.acr, orjson.dumps(list(code.amr)).decode(), now,
        now + ttl, now if revoked else None)
    return changed > 0


async def get_grant(db: SqlDb, grant_id: str) -> Grant | None:
    row = await db.fetchrow("SELECT * FROM auth_grants WHERE grant_id = ?", grant_id)
    return None if row is None else _grant(row)


async def new_refresh_token(db: SqlDb, grant_id: str) -> str:
    token = secrets.token_urlsafe(32)
    await db.execute("INSERT INTO auth_refresh_tokens (token_hash, grant_id, created_at) "
                     "VALUES (?, ?, ?)", hash_secret(token), grant_id, int(time.time()))
    return token


async def find_refresh_token(db: SqlDb, token: str) -> tuple[Grant, bool] | None:
    """(its grant, already used) for a refresh token we issued; None when unknown."""
    row = await db.fetchrow("SELECT grant_id, used_at FROM auth_refresh_tokens WHERE token_hash = ?",
                            hash_secret(token))
    if row is None:
        return None
    grant = await get_grant(db, row["grant_id"])
    return None if grant is None else (grant, row["used_at"] is not None)


async def use_refresh_token(db: SqlDb, token: str) -> bool:
    """Mark a refresh token used; False when another request used it first (reuse)."""
    return await db.execute("UPDATE auth_refresh_tokens SET used_at = ? WHERE token_hash = ? "
                            "AND used_at IS NULL", int(time.time()), hash_secret(token)) > 0
