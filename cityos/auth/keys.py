"""Token signing keys: RSA-2048 (RS256), rotated so that no verifier ever sees an unknown key.

Life of a key (ADR 0012 §4): ``next`` is published in the JWKS ``PUBLISH_AHEAD`` (2 days) before
it signs, so every relying party that caches the JWKS (max-age 3600) knows it in time; it then
becomes ``current`` (the one that signs) and the old current becomes ``retired``, published for
``PUBLISH_AHEAD`` more so tokens it signed stay verifiable until they expire; then it is deleted.
Each step is one conditional statement (``WHERE state = ...``, partial unique indexes on the
``next`` and ``current`` states), so when several nodes run the schedule exactly one wins.

Private keys are stored as JWKs encrypted with AES-256-GCM under a key derived from the
installation's secret key (``auth/secret_key.py``); the kid is the associated data, so a row's
ciphertext cannot be moved to another kid.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from joserfc.jwk import RSAKey

from cityos.auth.secret_key import derive_key
from cityos.core.sqldb import SqlDb

log = logging.getLogger("cityos.auth")
PUBLISH_AHEAD = 2 * 86400
STATES = ("next", "current", "retired")

KEYS_DDL = """
CREATE TABLE IF NOT EXISTS auth_keys (
    kid TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    private_jwk TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    activated_at BIGINT,
    retired_at BIGINT
);
CREATE UNIQUE INDEX IF NOT EXISTS auth_keys_one_current ON auth_keys (state) WHERE state = 'current';
CREATE UNIQUE INDEX IF NOT EXISTS auth_keys_one_next ON auth_keys (state) WHERE state = 'next';
"""


class SigningKeys:
    """The key set of this installation, as loaded from ``auth_keys``."""

    def __init__(self, db: SqlDb, secret: bytes | Callable[[], bytes], rotation: int,
                 clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.rotation = rotation
        self.clock = clock
        self._secret = secret        # or its loader: the key file is touched only when needed
        self._aead_key: AESGCM | None = None
        self._keys: dict[str, RSAKey] = {}        # kid -> key (private) of every published key
        self._rows: dict[str, dict[str, Any]] = {}
        self.current_kid: str | None = None

    # -- encryption ------------------------------------------------------------------------------
    @property
    def _aead(self) -> AESGCM:
        if self._aead_key is None:
            secret = self._secret() if callable(self._secret) else self._secret
            self._aead_key = AESGCM(derive_key(secret, "signing-keys"))
        return self._aead_key

    def _seal(self, kid: str, key: RSAKey) -> str:
        nonce = secrets.token_bytes(12)
        plain = orjson.dumps(key.as_dict(private=True))
        return base64.urlsafe_b64encode(nonce + self._aead.encrypt(nonce, plain, kid.encode())).decode()

    def _open(self, kid: str, sealed: str) -> RSAKey:
        raw = base64.urlsafe_b64decode(sealed)
        try:
            plain = self._aead.decrypt(raw[:12], raw[12:], kid.encode())
        except InvalidTag as error:
            raise RuntimeError(f"signing key {kid} cannot be decrypted: this node's secret key "
                               "(CITYOS_SECRET_KEY_FILE) differs from the one that stored it; "
                               "every node must share one file") from error
        return RSAKey.import_key(orjson.loads(plain))

    # -- reading ---------------------------------------------------------------------------------
    async def create_schema(self) -> None:
        await self.db.script(KEYS_DDL)

    async def load(self) -> bool:
        """Re-read the table (decrypting only keys not seen before); True when the set changed."""
        rows = {r["kid"]: r for r in await self.db.fetch(
            "SELECT kid, state, created_at, activated_at, retired_at FROM auth_keys")}
        states = {kid: r["state"] for kid, r in rows.items()}
        if states == {kid: r["state"] for kid, r in self._rows.items()}:
            return False
        keys: dict[str, RSAKey] = {}
        for kid in rows:
            if kid in self._keys:
                keys[kid] = self._keys[kid]
                continue
            sealed = await self.db.fetchrow("SELECT private_jwk FROM auth_keys WHERE kid = ?", kid)
            if sealed is not None:
                keys[kid] = self._open(kid, sealed["private_jwk"])
        self._keys, self._rows = keys, rows
        self.current_kid = next((k for k, r in rows.items() if r["state"] == "current"), None)
        return True

    def key(self, kid: str) -> RSAKey | None:
        """A published key by kid (None: unknown; the caller never fetches it from anywhere)."""
        return self._keys.get(kid)

    def signing_key(self) -> tuple[str, RSAKey]:
        if self.current_kid is None:
            raise RuntimeError("no current signing key (SigningKeys.ensure_current not run)")
        return self.current_kid, self._keys[self.current_kid]

    def jwks(self) -> dict[str, Any]:
        """The public keys of every published (next, current, retired) key (RFC 7517 §5)."""
        order = {state: i for i, state in enumerate(STATES)}
        kids = sorted(self._keys, key=lambda k: order.get(self._rows[k]["state"], 9))
        return {"keys": [self._keys[k].as_dict(private=False, use="sig", alg="RS256")
                         for k in kids]}

    # -- the schedule ----------------------------------------------------------------------------
    async def _insert(self, state: str) -> bool:
        """Insert a fresh key in ``state``; False when another node holds that state already."""
        kid = secrets.token_urlsafe(12)
        # ~100 ms of CPU: off the event loop
        key = await asyncio.to_thread(RSAKey.generate_key, 2048, {"kid": kid})
        now = int(self.clock())
        changed = await self.db.execute(
            "INSERT INTO auth_keys (kid, state, private_jwk, created_at, activated_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            kid, state, self._seal(kid, key), now, now if state == "current" else None)
        if changed:
            log.info("signing key %s created as %s", kid, state)
        return changed > 0

    async def ensure_current(self) -> None:
        """Start-up: make sure a current key exists (the first node to start creates it)."""
        await self.create_schema()
        await self.load()
        if self.current_kid is None:
            await self._insert("current")
            await self.load()

    async def _promote(self, next_kid: str, now: int) -> bool:
        """Next becomes current, current becomes retired: one transaction, one winner."""
        try:
            async with self.db.transaction() as tx:
                await tx.execute("UPDATE auth_keys SET state = 'retired', retired_at = ? "
                                 "WHERE state = 'current'", now)
                won = await tx.execute("UPDATE auth_keys SET state = 'current', activated_at = ? "
                                       "WHERE kid = ? AND state = 'next'", now, next_kid)
                if not won:
                    raise _Lost()   # rolls the retirement back
        except _Lost:
            return False
        log.info("signing key %s is now current", next_kid)
        return True

    async def maintain(self) -> bool:
        """Run due steps of the rotation schedule; True when the key set changed."""
        await self.load()
        now = int(self.clock())
        rows = list(self._rows.values())
        current = next((r for r in rows if r["state"] == "current"), None)
        nxt = next((r for r in rows if r["state"] == "next"), None)
        changed = False
        if current is not None and nxt is None and \
                now >= int(current["activated_at"] or current["created_at"]) + self.rotation - PUBLISH_AHEAD:
            changed |= await self._insert("next")
        elif nxt is not None and now >= int(nxt["created_at"]) + PUBLISH_AHEAD:
            changed |= await self._promote(nxt["kid"], now)
        changed |= await self.db.execute(
            "DELETE FROM auth_keys WHERE state = 'retired' AND retired_at <= ?",
            now - PUBLISH_AHEAD) > 0
        if changed:
            await self.load()
        return changed

    async def rotate_now(self) -> str:
        """Operators and tests: publish a next key if none and make it current at once (tokens
        of other relying parties' JWKS caches may fail for up to an hour); returns the new kid."""
        await self.load()
        if not any(r["state"] == "next" for r in self._rows.values()):
            await self._insert("next")
            await self.load()
        nxt = next(r for r in self._rows.values() if r["state"] == "next")
        await self._promote(nxt["kid"], int(self.clock()))
        await self.load()
        assert self.current_kid is not None
        return self.current_kid


class _Lost(Exception):
    """Another node promoted first (the transaction is rolled back)."""
