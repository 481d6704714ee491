"""TOTP second factor (RFC 6238, pyotp) with single-use recovery codes.

Secrets are AES-256-GCM encrypted (associated data: the account id, so a row copied to another
account does not decrypt).  A code is accepted for the previous, current or next 30 s step
(``valid_window=1``) only if its step is later than the last accepted one, written with a
compare-and-set, so an observed code cannot be replayed (RFC 6238 §5.2).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

import orjson
import pyotp
import segno

from cityos.auth.login.keys import Sealer
from cityos.core.sqldb import SqlDb

STEP = 30
RECOVERY_CODES = 10
ISSUER = "CityOS"

TOTP_DDL = """
CREATE TABLE IF NOT EXISTS auth_totp (
    account_id TEXT PRIMARY KEY,
    secret TEXT NOT NULL,
    last_step BIGINT NOT NULL DEFAULT 0,
    recovery TEXT NOT NULL DEFAULT '[]',
    created_at BIGINT NOT NULL
);
"""


def new_secret() -> str:
    return pyotp.random_base32()    # 160 bits (RFC 4226 §4 recommends 160)


def qr_svg(secret: str, username: str) -> str:
    """The otpauth:// URI as an inline SVG QR code (no external image, CSP-friendly)."""
    uri = pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=ISSUER)
    svg: str = segno.make(uri, error="m").svg_inline(scale=4, border=2, dark="#000", light="#fff")
    return svg


def matching_step(secret: str, code: str, now: float | None = None) -> int | None:
    """The time step (within ±1) whose code equals ``code``; compared in constant time."""
    code = code.strip().replace(" ", "")
    if not (code.isdigit() and len(code) == 6):
        return None
    now = time.time() if now is None else now
    totp = pyotp.TOTP(secret)
    current = int(now) // STEP
    found = None
    for step in (current - 1, current, current + 1):
        if hmac.compare_digest(totp.at(step * STEP), code):
            found = step
    return found


def _hash_recovery(code: str) -> str:
    return hashlib.sha256(code.replace("-", "").replace(" ", "").lower().encode()).hexdigest()


def new_recovery_codes() -> list[str]:
    """Ten 50-bit codes like ``k3vq7-m2x9a-4h``: readable, and hashed with a fast hash is fine."""
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    out = []
    for _ in range(RECOVERY_CODES):
        raw = "".join(secrets.choice(alphabet) for _ in range(10))
        out.append(f"{raw[:5]}-{raw[5:]}")
    return out


class TotpStore:
    def __init__(self, db: SqlDb, sealer: Sealer) -> None:
        self.db = db
        self.sealer = sealer

    async def create_schema(self) -> None:
        await self.db.script(TOTP_DDL)

    async def enrolled(self, account_id: str) -> bool:
        return await self.db.fetchrow("SELECT 1 AS x FROM auth_totp WHERE account_id = ?",
                                      account_id) is not None

    async def enrol(self, account_id: str, secret: str, step: int,
                    recovery: list[str]) -> None:
        """Store (or replace) the account's factor; ``step`` is the confirming code's step."""
        sealed = self.sealer.seal(secret.encode(), account_id)
        hashes = orjson.dumps([_hash_recovery(c) for c in recovery]).decode()
        await self.db.execute(
            "INSERT INTO auth_totp (account_id, secret, last_step, recovery, created_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (account_id) DO UPDATE SET secret = excluded.secret, "
            "last_step = excluded.last_step, recovery = excluded.recovery, "
            "created_at = excluded.created_at", account_id, sealed, step, hashes, int(time.time()))

    async def verify(self, account_id: str, code: str) -> bool:
        """True for a fresh TOTP code or an unused recovery code (which is then spent)."""
        row = await self.db.fetchrow("SELECT * FROM auth_totp WHERE account_id = ?", account_id)
        if row is None:
            return False
        plain = self.sealer.open(row["secret"], account_id)
        if plain is None:
            return False
        step = matching_step(plain.decode(), code)
        if step is not None:
            return await self.db.execute(
                "UPDATE auth_totp SET last_step = ? WHERE account_id = ? AND last_step < ?",
                step, account_id, step) > 0
        return await self._spend_recovery(account_id, code, row["recovery"])

    async def _spend_recovery(self, account_id: str, code: str, stored: str) -> bool:
        digest = _hash_recovery(code)
        hashes: list[str] = orjson.loads(stored)
        if not any(hmac.compare_digest(digest, h) for h in hashes):
            return False
        remaining = orjson.dumps([h for h in hashes if h != digest]).decode()
        # compare-and-set on the whole list: two concurrent uses of one code cannot both win
        return await self.db.execute(
            "UPDATE auth_totp SET recovery = ? WHERE account_id = ? AND recovery = ?",
            remaining, account_id, stored) > 0
