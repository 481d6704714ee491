"""Single sign-on sessions (AU-AA-4): one browser session serves every relying party.

The cookie holds 256 random bits; the table holds only their SHA-256, so a database dump cannot
be replayed as a cookie.  A session also has a stable public ``sid`` (OIDC Front-/Back-Channel
Logout's session id): the cookie id changes at MFA (fixation defence) but the tokens issued in
the session stay bound to the same ``sid``, so logout revokes them all.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

import orjson

from cityos.auth.directory import hash_secret
from cityos.core.sqldb import SqlDb

ABSOLUTE_TTL = 12 * 3600
IDLE_TTL = 2 * 3600
TOUCH_EVERY = 300          # last_seen is written at most every 5 minutes

ACR_PWD = "urn:cityos:acr:pwd"
ACR_MFA = "urn:cityos:acr:mfa"
AMR_PWD = ("pwd",)
AMR_MFA = ("pwd", "otp", "mfa")     # RFC 8176

SESSIONS_DDL = """
CREATE TABLE IF NOT EXISTS auth_sessions (
    id_hash TEXT PRIMARY KEY,
    sid TEXT NOT NULL,
    account_id TEXT NOT NULL,
    auth_time BIGINT NOT NULL,
    acr TEXT NOT NULL,
    amr TEXT NOT NULL,
    mfa_at BIGINT,
    created_at BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX IF NOT EXISTS auth_sessions_account ON auth_sessions (account_id);
CREATE INDEX IF NOT EXISTS auth_sessions_sid ON auth_sessions (sid);
"""


@dataclass(frozen=True)
class Session:
    cookie: str               # the raw id (only ever in the cookie and in memory)
    sid: str
    account_id: str
    auth_time: int
    acr: str
    amr: tuple[str, ...]
    mfa_at: int | None
    created_at: int
    last_seen: int
    expires_at: int

    def mfa_fresh(self, max_age: int, now: int) -> bool:
        return self.mfa_at is not None and now - self.mfa_at <= max_age


class SessionStore:
    def __init__(self, db: SqlDb) -> None:
        self.db = db

    async def create_schema(self) -> None:
        await self.db.script(SESSIONS_DDL)

    async def create(self, account_id: str, now: int | None = None) -> Session:
        """A new password session (a new id: never reuse one the browser brought, RFC 6819)."""
        now = int(time.time()) if now is None else now
        cookie, sid = secrets.token_urlsafe(32), secrets.token_urlsafe(16)
        await self.db.execute(
            "INSERT INTO auth_sessions (id_hash, sid, account_id, auth_time, acr, amr, created_at, "
            "last_seen, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            hash_secret(cookie), sid, account_id, now, ACR_PWD, _amr(AMR_PWD), now, now,
            now + ABSOLUTE_TTL)
        found = await self.get(cookie, now)
        assert found is not None
        return found

    async def get(self, cookie: str | None, now: int | None = None) -> Session | None:
        """The live session of ``cookie`` (not revoked, not past its absolute or idle limit)."""
        if not cookie or len(cookie) > 100:
            return None
        now = int(time.time()) if now is None else now
        row = await self.db.fetchrow(
            "SELECT * FROM auth_sessions WHERE id_hash = ? AND revoked_at IS NULL "
            "AND expires_at > ? AND last_seen > ?", hash_secret(cookie), now, now - IDLE_TTL)
        if row is None:
            return None
        if now - int(row["last_seen"]) >= TOUCH_EVERY:
            await self.db.execute("UPDATE auth_sessions SET last_seen = ? WHERE id_hash = ?",
                                  now, row["id_hash"])
        return _session(cookie, row)

    async def complete_mfa(self, session: Session, now: int | None = None) -> Session:
        """Record a second factor and move the session to a new cookie id (fixation defence)."""
        now = int(time.time()) if now is None else now
        cookie = secrets.token_urlsafe(32)
        await self.db.execute(
            "UPDATE auth_sessions SET id_hash = ?, auth_time = ?, acr = ?, amr = ?, mfa_at = ?, "
            "last_seen = ? WHERE id_hash = ?", hash_secret(cookie), now, ACR_MFA, _amr(AMR_MFA),
            now, now, hash_secret(session.cookie))
        found = await self.get(cookie, now)
        assert found is not None
        return found

    async def revoke(self, session: Session) -> None:
        await self.db.execute("UPDATE auth_sessions SET revoked_at = ? WHERE sid = ? "
                              "AND revoked_at IS NULL", int(time.time()), session.sid)

    async def revoke_account(self, account_id: str) -> int:
        return await self.db.execute("UPDATE auth_sessions SET revoked_at = ? WHERE account_id = ? "
                                     "AND revoked_at IS NULL", int(time.time()), account_id)

    async def list_live(self, account_id: str) -> list[dict[str, Any]]:
        now = int(time.time())
        rows = await self.db.fetch(
            "SELECT * FROM auth_sessions WHERE account_id = ? AND revoked_at IS NULL "
            "AND expires_at > ? AND last_seen > ? ORDER BY created_at", account_id, now,
            now - IDLE_TTL)
        return [{"sid": r["sid"], "authTime": r["auth_time"], "acr": r["acr"],
                 "amr": orjson.loads(r["amr"]), "mfaAt": r["mfa_at"], "createdAt": r["created_at"],
                 "lastSeen": r["last_seen"], "expiresAt": r["expires_at"]} for r in rows]


def _amr(amr: tuple[str, ...]) -> str:
    return orjson.dumps(list(amr)).decode()


def _session(cookie: str, row: Any) -> Session:
    return Session(cookie=cookie, sid=row["sid"], account_id=row["account_id"],
                   auth_time=int(row["auth_time"]), acr=row["acr"],
                   amr=tuple(orjson.loads(row["amr"])),
                   mfa_at=None if row["mfa_at"] is None else int(row["mfa_at"]),
                   created_at=int(row["created_at"]), last_seen=int(row["last_seen"]),
                   expires_at=int(row["expires_at"]))
