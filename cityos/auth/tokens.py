"""Access and ID tokens: issued and validated here, locally, with joserfc (ADR 0012 §4).

Access tokens are RFC 9068 JWTs (``typ: at+jwt``) signed RS256 by the current key of
``auth/keys.py``.  Validation never leaves the process: the header is checked first (RS256 only,
so ``none`` and HS256 never reach a verifier; a published ``kid``, never fetched from anywhere;
``typ`` at+jwt, so an ID token is not an access token, RFC 9068 §4), then the signature, then
``iss``/``aud``/``exp``/``nbf`` with 30 s leeway.  A valid token is cached (LRU, until ``exp``),
but the revocation check (``provider/revocations.py``) runs on every call.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from joserfc import jwt
from joserfc.errors import JoseError

from cityos.auth.directory import Directory
from cityos.auth.keys import SigningKeys
from cityos.auth.provider.codes import CODES_DDL
from cityos.auth.provider.grants import GRANTS_DDL
from cityos.auth.provider.revocations import Revocations
from cityos.auth.secret_key import load_or_create
from cityos.core.access import Principal
from cityos.core.settings import Settings
from cityos.core.sqldb import SqlDb
from cityos.core.tasks import cancel_quietly

log = logging.getLogger("cityos.auth")
ALG = "RS256"
LEEWAY = 30
ID_TOKEN_TTL = 3600
CACHE_SIZE = 10_000
KEY_CHECK_EVERY = 10          # seconds between key-schedule runs (the poll runs every second)


class InvalidToken(Exception):
    """The token is not a valid access token of this issuer (RFC 6750 ``invalid_token``)."""

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


@dataclass(frozen=True)
class _Valid:
    """A verified token: the principal plus what the revocation check needs."""

    principal: Principal
    exp: int
    iat: int
    claims: dict[str, Any]


def _header(token: str) -> dict[str, Any]:
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidToken("not a signed JWT")
    try:
        raw = parts[0] + "=" * (-len(parts[0]) % 4)
        header = orjson.loads(base64.urlsafe_b64decode(raw))
    except (ValueError, orjson.JSONDecodeError) as error:
        raise InvalidToken("malformed JWT header") from error
    if not isinstance(header, dict):
        raise InvalidToken("malformed JWT header")
    return header


class TokenService:
    """Issues and validates tokens; a part of the auth runtime (``start``/``stop``)."""

    def __init__(self, settings: Settings, db: SqlDb, directory: Directory, issuer: str, *,
                 secret: bytes | None = None, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.db = db
        self.directory = directory
        self.issuer = issuer
        self.audience = issuer
        self.access_ttl = settings.auth_access_ttl
        self.clock = clock
        self.keys = SigningKeys(db, secret if secret is not None else lambda: load_or_create(settings),
                                settings.auth_key_rotation, clock)
        self.revocations = Revocations(db, directory, settings.auth_access_ttl + LEEWAY, clock)
        self._cache: OrderedDict[str, _Valid] = OrderedDict()
        self._task: asyncio.Task[None] | None = None

    # -- life cycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        await self.db.script(CODES_DDL)
        await self.db.script(GRANTS_DDL)
        await self.keys.create_schema()
        await self.keys.load()
        if not self.settings.insecure_no_auth:
            # insecure development runs (and the ~1,600 API tests) mint no tokens at start:
            # they skip the RSA key generation until a token is first signed
            await self.keys.ensure_current()
            await self.keys.maintain()
        await self.revocations.start()
        self._task = asyncio.create_task(self._poll(), name="cityos-auth-token-sync")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_quietly(task)

    async def _poll(self) -> None:
        """Every second: other nodes' revocations and directory changes; every 10 s: keys."""
        tick = 0
        while True:
            await asyncio.sleep(1.0)
            tick += 1
            try:
                await self.revocations.sync()
                if tick % KEY_CHECK_EVERY == 0:
                    await self.keys.maintain()
            except Exception:   # a database hiccup must not end the loop: retried next second
                log.exception("auth token sync failed")

    # -- issuing ---------------------------------------------------------------------------------
    async def _sign(self, header_type: str, claims: dict[str, Any]) -> str:
        if self.keys.current_kid is None:
            await self.keys.ensure_current()
        kid, key = self.keys.signing_key()
        return jwt.encode({"alg": ALG, "kid": kid, "typ": header_type}, claims, key,
                          algorithms=[ALG])

    async def issue_access_token(
            self, *, subject: str, kind: str, client_id: str, scope: str, roles: list[str],
            organization: str | None, tenant: str, acr: str | None = None,
            amr: list[str] | tuple[str, ...] = (), auth_time: int | None = None,
            purpose: str | None = None, sid: str | None = None, gid: str | None = None,
            audience: str | None = None) -> tuple[str, int]:
        """An RFC 9068 access token and its lifetime in seconds (``expires_in``)."""
        if kind not in ("user", "client"):
            raise ValueError(f"token kind must be user or client, not {kind!r}")
        now = int(self.clock())
        claims: dict[str, Any] = {
            "iss": self.issuer, "sub": subject, "aud": audience or self.audience,
            "exp": now + self.access_ttl, "iat": now, "nbf": now,
            "jti": secrets.token_urlsafe(16), "client_id": client_id, "scope": scope,
            "roles": sorted(set(roles)), "tenant": tenant, "ckind": kind}
        optional = {"org": organization, "acr": acr, "amr": list(amr) or None,
                    "auth_time": auth_time, "purpose": purpose, "sid": sid, "gid": gid}
        claims.update({k: v for k, v in optional.items() if v is not None})
        return await self._sign("at+jwt", claims), self.access_ttl

    async def issue_id_token(self, *, subject: str, client_id: str, nonce: str | None,
                             auth_time: int | None, acr: str | None,
                             amr: list[str] | tuple[str, ...], sid: str | None,
                             extra_claims: dict[str, Any]) -> str:
        """An OpenID Connect ID token for ``client_id`` (OIDC Core §2, §3.1.3.6)."""
        now = int(self.clock())
        claims: dict[str, Any] = {**extra_claims, "iss": self.issuer, "sub": subject,
                                  "aud": client_id, "exp": now + ID_TOKEN_TTL, "iat": now}
        optional = {"nonce": nonce, "auth_time": auth_time, "acr": acr,
                    "amr": list(amr) or None, "sid": sid}
        claims.update({k: v for k, v in optional.items() if v is not None})
        return await self._sign("JWT", claims)

    # -- validating ------------------------------------------------------------------------------
    def _verify(self, token: str, typ: str, audience: str | None) -> dict[str, Any]:
        """Header, signature and registered claims; the claims (InvalidToken otherwise)."""
        header = _header(token)
        if header.get("alg") != ALG:
            raise InvalidToken(f"algorithm {header.get('alg')!r} is not accepted")
        found = str(header.get("typ", "")).lower()
        if found.removeprefix("application/") != typ:
            raise InvalidToken(f"token type {header.get('typ')!r} is not {typ}")
        key = self.keys.key(str(header.get("kid", "")))
        if key is None:
            raise InvalidToken("unknown signing key")
        try:
            claims = jwt.decode(token, key, algorithms=[ALG]).claims
            options: dict[str, Any] = {"iss": {"essential": True, "value": self.issuer},
                                       "exp": {"essential": True}, "iat": {"essential": True}}
            if audience is not None:
                options["aud"] = {"essential": True, "value": audience}
            jwt.JWTClaimsRegistry(now=int(self.clock()), leeway=LEEWAY, **options).validate(claims)
        except JoseError as error:
            raise InvalidToken(error.description or error.error) from error
        return claims

    async def validate(self, token: str) -> Principal:
        """The caller an access token names; ``InvalidToken`` when it is not valid now."""
        return (await self._valid(token)).principal

    async def _valid(self, token: str) -> _Valid:
        now = self.clock()
        valid = self._cache.get(token)
        if valid is not None and valid.exp + LEEWAY <= now:
            self._cache.pop(token, None)
            valid = None
        if valid is None:
            valid = self._principal(self._verify(token, "at+jwt", self.audience))
            self._cache[token] = valid
            if len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(token)
        reason = await self.revocations.why_void(valid.principal, valid.iat)
        if reason:
            raise InvalidToken(reason)
        return valid

    @staticmethod
    def _principal(claims: dict[str, Any]) -> _Valid:
        kind = claims.get("ckind")
        if kind not in ("user", "client") or not isinstance(claims.get("sub"), str):
            raise InvalidToken("token lacks its subject kind")
        principal = Principal(
            kind=kind, subject=claims["sub"], client_id=claims.get("client_id"),
            organization=claims.get("org"), home_tenant=str(claims.get("tenant", "")),
            roles=frozenset(claims.get("roles") or ()),
            scopes=frozenset(str(claims.get("scope", "")).split()), acr=claims.get("acr"),
            amr=tuple(claims.get("amr") or ()), auth_time=claims.get("auth_time"),
            purpose=claims.get("purpose"), session_id=claims.get("sid"),
            grant_id=claims.get("gid"), token_id=claims.get("jti"))
        return _Valid(principal, int(claims["exp"]), int(claims["iat"]), claims)

    async def introspect(self, token: str) -> dict[str, Any] | None:
        """The claims of a currently valid access token (None: not active), for RFC 7662."""
        try:
            return dict((await self._valid(token)).claims)
        except InvalidToken:
            return None

    def verify_id_token(self, token: str, *, client_id: str | None = None,
                        allow_expired: bool = False) -> dict[str, Any]:
        """The claims of an ID token this issuer signed (for ``id_token_hint`` at logout, where
        an expired token still names the user: OIDC RP-Initiated Logout §2)."""
        if allow_expired:
            header = _header(token)
            key = self.keys.key(str(header.get("kid", "")))
            if header.get("alg") != ALG or key is None or \
                    str(header.get("typ", "JWT")).upper() != "JWT":
                raise InvalidToken("not an ID token of this issuer")
            try:
                claims = dict(jwt.decode(token, key, algorithms=[ALG]).claims)
            except JoseError as error:
                raise InvalidToken("bad signature") from error
            if claims.get("iss") != self.issuer or (client_id and claims.get("aud") != client_id):
                raise InvalidToken("not an ID token of this issuer")
            return claims
        return self._verify(token, "jwt", client_id)

    # -- revoking (applied here at once, on other nodes within a second) -------------------------
    async def revoke_token_id(self, jti: str, exp: int) -> None:
        await self.revocations.add("jti", jti, int(exp) + LEEWAY)

    async def revoke_grant(self, gid: str) -> None:
        await self.revocations.add("gid", gid)

    async def revoke_session(self, sid: str) -> None:
        await self.revocations.add("sid", sid)

    async def revoke_subject(self, sub: str) -> None:
        """Void every token of ``sub`` issued up to now ("log out everywhere", erasure)."""
        await self.revocations.add("sub", sub)

    # -- operators and tests ---------------------------------------------------------------------
    async def rotate_now(self) -> str:
        return await self.keys.rotate_now()
