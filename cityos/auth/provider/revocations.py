"""Which otherwise valid tokens are void: revoked ids, grants, sessions, subjects; disabled
accounts and clients (ADR 0012 §4).

Revocations are rows of ``auth_revocations`` (kind ``jti`` | ``gid`` | ``sid`` | ``sub``, value,
``at``, ``expires_at``).  A node applies its own at once and polls the table every second for
other nodes' rows, so a revocation reaches every node within the sync interval.  A row is kept
only as long as a token it voids can live (access TTL + leeway, or the token's own ``exp``).
The directory's side is read the same way: accounts whose ``not_before`` moved (role or status
change, erasure) and, when the directory's config version changes, the clients.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from cityos.auth.directory import Directory
from cityos.auth.directory.models import Client
from cityos.core.access import Principal
from cityos.core.sqldb import SqlDb

REVOCATIONS_DDL = """
CREATE TABLE IF NOT EXISTS auth_revocations (
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (kind, value, at)
);
CREATE INDEX IF NOT EXISTS auth_revocations_at ON auth_revocations (at);
CREATE INDEX IF NOT EXISTS auth_accounts_not_before ON auth_accounts (not_before);
"""
SKEW = 5            # seconds of clock difference between nodes the polls tolerate
PRUNE_EVERY = 60

# A revoked grant, session or subject also ends the refresh-token families it names.
_GRANT_UPDATES = {
    "gid": "UPDATE auth_grants SET revoked_at = ? WHERE grant_id = ? AND revoked_at IS NULL",
    "sid": "UPDATE auth_grants SET revoked_at = ? WHERE session_id = ? AND revoked_at IS NULL",
    "sub": "UPDATE auth_grants SET revoked_at = ? WHERE account_id = ? AND revoked_at IS NULL",
}


class Revocations:
    """The in-memory revocation state of this node, kept in step with the database."""

    def __init__(self, db: SqlDb, directory: Directory, window: int,
                 clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.directory = directory
        self.window = window                        # longest life of a token a row must void
        self.clock = clock
        self._void: dict[str, dict[str, int]] = {"jti": {}, "gid": {}, "sid": {}}  # value -> expiry
        self._cutoff: dict[str, tuple[int, int]] = {}     # sub -> (revoked at, row expiry)
        self._not_before: dict[str, int] = {}             # account id -> directory's not_before
        self._inactive: set[str] = set()                  # accounts not active
        self._clients: dict[str, Client | None] = {}
        self._deleted_clients: set[str] = set()
        self._config_version = -1
        self._seen_rows = 0
        self._seen_accounts = 0
        self._pruned = 0

    async def start(self) -> None:
        await self.db.script(REVOCATIONS_DDL)
        now = int(self.clock())
        for row in await self.db.fetch("SELECT id FROM auth_accounts WHERE status <> 'active'"):
            self._inactive.add(row["id"])
        self._seen_rows = self._seen_accounts = now - self.window
        self._pruned = now
        await self.sync()

    # -- writing ---------------------------------------------------------------------------------
    async def add(self, kind: str, value: str, expires_at: int | None = None) -> None:
        now = int(self.clock())
        expiry = expires_at if expires_at is not None else now + self.window
        async with self.db.transaction() as tx:
            await tx.execute("INSERT INTO auth_revocations (kind, value, at, expires_at) "
                             "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING", kind, value, now, expiry)
            if kind in _GRANT_UPDATES:
                await tx.execute(_GRANT_UPDATES[kind], now, value)
        self._apply(kind, value, now, expiry)

    def _apply(self, kind: str, value: str, at: int, expiry: int) -> None:
        if kind == "sub":
            old = self._cutoff.get(value)
            if old is None or old[0] < at:
                self._cutoff[value] = (at, expiry)
        elif kind in self._void:
            self._void[kind][value] = max(expiry, self._void[kind].get(value, 0))

    # -- polling ---------------------------------------------------------------------------------
    async def sync(self) -> None:
        """Apply what other nodes (and the directory) changed since the last call."""
        now = int(self.clock())
        for row in await self.db.fetch(
                "SELECT kind, value, at, expires_at FROM auth_revocations WHERE at >= ? "
                "AND expires_at > ?", self._seen_rows - SKEW, now):
            self._apply(row["kind"], row["value"], int(row["at"]), int(row["expires_at"]))
        self._seen_rows = now
        for row in await self.db.fetch(
                "SELECT id, status, not_before FROM auth_accounts WHERE not_before >= ?",
                self._seen_accounts - SKEW):
            self._not_before[row["id"]] = int(row["not_before"])
            if row["status"] == "active":
                self._inactive.discard(row["id"])
            else:
                self._inactive.add(row["id"])
        self._seen_accounts = now
        version = await self.directory.config_version()
        if version != self._config_version:
            self._config_version = version
            clients: dict[str, Client | None] = {
                c.client_id: c for c in await self.directory.list_clients()}
            self._deleted_clients |= {cid for cid, c in self._clients.items()
                                      if c is not None and cid not in clients}
            self._deleted_clients -= clients.keys()
            self._clients = clients
        if now - self._pruned >= PRUNE_EVERY:
            await self._prune(now)

    async def _prune(self, now: int) -> None:
        self._pruned = now
        for table in self._void.values():
            for value in [v for v, expiry in table.items() if expiry <= now]:
                del table[value]
        for sub in [s for s, (_at, expiry) in self._cutoff.items() if expiry <= now]:
            del self._cutoff[sub]
        for acc in [a for a, nb in self._not_before.items() if nb + self.window <= now]:
            del self._not_before[acc]
        await self.db.execute("DELETE FROM auth_revocations WHERE expires_at <= ?", now)

    # -- checking --------------------------------------------------------------------------------
    async def client(self, client_id: str) -> Client | None:
        """The client as last seen (read once from the database when not yet known)."""
        if client_id not in self._clients:
            self._clients[client_id] = await self.directory.get_client(client_id)
        return self._clients[client_id]

    async def why_void(self, who: Principal, iat: int) -> str | None:
        """Why a verified token of ``who`` issued at ``iat`` is void now (None: it is not)."""
        if who.token_id and who.token_id in self._void["jti"]:
            return "token revoked"
        if who.grant_id and who.grant_id in self._void["gid"]:
            return "grant revoked"
        if who.session_id and who.session_id in self._void["sid"]:
            return "session ended"
        cutoff = self._cutoff.get(who.subject)
        # a token issued in the second of the cut-off is void too: strict beats convenient here
        if cutoff is not None and iat <= cutoff[0]:
            return "tokens of this subject revoked"
        if who.kind == "user":
            if who.subject in self._inactive:
                return "account not active"
            if iat < self._not_before.get(who.subject, 0):
                return "account changed since the token was issued"
        if who.client_id:
            # A client never seen is let through: only this issuer signs tokens, so it is one
            # minted internally (tests); one seen and then deleted is refused.
            client = await self.client(who.client_id)
            if who.client_id in self._deleted_clients or (
                    client is not None and not client.valid_at(self.clock())):
                return "client not active"
        return None
