"""Token service: issuing, local validation (what it refuses and why), revocation, key rotation,
the secret key file.  Runs on both engines against a started auth runtime."""

from __future__ import annotations

import base64
import os
import stat
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey

from cityos.auth.keys import PUBLISH_AHEAD, SigningKeys
from cityos.auth.provider.revocations import Revocations
from cityos.auth.runtime import AuthRuntime, build_auth
from cityos.auth.secret_key import load_or_create
from cityos.auth.tokens import InvalidToken, TokenService
from cityos.core.settings import Settings

BASE = "http://testserver"


def secure_settings(database_url: str, **extra: Any) -> Settings:
    return Settings.load(database_url=database_url, insecure_no_auth=False,
                         password_hash="t=1,m=1024,p=1", public_url=BASE, **extra)


@pytest.fixture
def runtime(auth_runtime: AuthRuntime) -> AuthRuntime:
    return auth_runtime


@pytest.fixture
def tokens(runtime: AuthRuntime) -> TokenService:
    service: TokenService = runtime.tokens
    return service


async def user_token(tokens: TokenService, subject: str = "acct-1", **extra: Any) -> str:
    args: dict[str, Any] = {"subject": subject, "kind": "user", "client_id": "app",
                            "scope": "openid entities:read", "roles": ["resident"],
                            "organization": "org-1", "tenant": "kobe", "acr": "urn:cityos:acr:pwd",
                            "amr": ["pwd"], "auth_time": int(time.time()), "sid": "s1",
                            "gid": "g1", **extra}
    token, _ = await tokens.issue_access_token(**args)
    return token


def forge(header: dict[str, Any], claims: dict[str, Any], key: Any, alg: str = "RS256") -> str:
    return jwt.encode(header, claims, key, algorithms=[alg])


def good_claims(**extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": BASE, "sub": "acct-1", "aud": BASE, "exp": now + 300, "iat": now, "nbf": now,
            "jti": "j-forged", "client_id": "app", "scope": "entities:read", "roles": [],
            "tenant": "", "ckind": "user", **extra}


async def test_issue_and_validate_round_trip(tokens: TokenService) -> None:
    token, expires_in = await tokens.issue_access_token(
        subject="acct-1", kind="user", client_id="app", scope="openid entities:read",
        roles=["resident", "developer"], organization="org-1", tenant="kobe", acr="a",
        amr=("pwd", "otp"), auth_time=123, purpose="p1", sid="s1", gid="g1")
    assert expires_in == 300
    header = orjson.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header["typ"] == "at+jwt" and header["alg"] == "RS256"
    assert header["kid"] == tokens.keys.current_kid
    who = await tokens.validate(token)
    assert (who.kind, who.subject, who.client_id, who.organization, who.home_tenant) == \
        ("user", "acct-1", "app", "org-1", "kobe")
    assert who.roles == {"resident", "developer"}
    assert who.scopes == {"openid", "entities:read"}
    assert (who.acr, who.amr, who.auth_time, who.purpose) == ("a", ("pwd", "otp"), 123, "p1")
    assert (who.session_id, who.grant_id) == ("s1", "g1") and who.token_id
    assert await tokens.validate(token) == who          # second call: from the cache


async def test_refuses_alg_none_and_hs256(tokens: TokenService) -> None:
    kid = tokens.keys.current_kid
    head = base64.urlsafe_b64encode(orjson.dumps({"alg": "none", "typ": "at+jwt", "kid": kid}))
    body = base64.urlsafe_b64encode(orjson.dumps(good_claims()))
    with pytest.raises(InvalidToken, match="algorithm"):
        await tokens.validate(f"{head.decode().rstrip('=')}.{body.decode().rstrip('=')}.")
    # HS256 keyed with the public key's modulus (the classic key-confusion attack)
    public = tokens.keys.jwks()["keys"][0]
    hs = forge({"alg": "HS256", "typ": "at+jwt", "kid": kid}, good_claims(),
               OctKey.import_key(public["n"]), alg="HS256")
    with pytest.raises(InvalidToken, match="algorithm"):
        await tokens.validate(hs)


async def test_refuses_wrong_audience_issuer_and_times(tokens: TokenService) -> None:
    kid, key = tokens.keys.signing_key()
    header = {"alg": "RS256", "typ": "at+jwt", "kid": kid}
    other_aud, _ = await tokens.issue_access_token(
        subject="a", kind="client", client_id="app", scope="", roles=[], organization=None,
        tenant="", audience="https://elsewhere.example")
    now = int(time.time())
    for token in (other_aud, forge(header, good_claims(iss="https://evil.example"), key),
                  forge(header, good_claims(exp=now - 100), key),
                  forge(header, good_claims(nbf=now + 100), key),
                  forge(header, good_claims(iat=now, exp=now + 10, sub=None), key)):
        with pytest.raises(InvalidToken):
            await tokens.validate(token)
    # within the 30 s leeway a just-expired token still passes
    assert (await tokens.validate(forge(header, good_claims(exp=now - 10), key))).subject == "acct-1"


async def test_refuses_id_token_unknown_kid_and_bad_signature(tokens: TokenService) -> None:
    id_token = await tokens.issue_id_token(subject="acct-1", client_id=BASE, nonce="n",
                                           auth_time=1, acr=None, amr=(), sid=None,
                                           extra_claims={"aud": BASE})
    with pytest.raises(InvalidToken, match="token type"):
        await tokens.validate(id_token)
    stranger = RSAKey.generate_key(2048)
    with pytest.raises(InvalidToken, match="unknown signing key"):
        await tokens.validate(forge({"alg": "RS256", "typ": "at+jwt", "kid": "nope"},
                                    good_claims(), stranger))
    with pytest.raises(InvalidToken):   # right kid, wrong key
        await tokens.validate(forge({"alg": "RS256", "typ": "at+jwt",
                                     "kid": tokens.keys.current_kid}, good_claims(), stranger))
    for garbage in ("", "abc", "a.b.c", "e30.e30.e30"):
        with pytest.raises(InvalidToken):
            await tokens.validate(garbage)
    claims = tokens.verify_id_token(id_token, client_id=BASE)
    assert claims["nonce"] == "n" and claims["sub"] == "acct-1"


@pytest.mark.parametrize("how", ["jti", "gid", "sid", "sub"])
async def test_revocation_applies_to_cached_tokens(tokens: TokenService, how: str) -> None:
    token = await user_token(tokens)
    who = await tokens.validate(token)          # now cached
    if how == "jti":
        await tokens.revoke_token_id(who.token_id or "", int(time.time()) + 300)
    elif how == "gid":
        await tokens.revoke_grant("g1")
    elif how == "sid":
        await tokens.revoke_session("s1")
    else:
        await tokens.revoke_subject("acct-1")
    with pytest.raises(InvalidToken):
        await tokens.validate(token)
    other = await user_token(tokens, subject="acct-2", sid="s2", gid="g2")
    assert (await tokens.validate(other)).subject == "acct-2"


async def test_other_node_sees_revocations(runtime: AuthRuntime, tokens: TokenService) -> None:
    token = await user_token(tokens)
    who = await tokens.validate(token)
    node2 = Revocations(runtime.db, runtime.directory, 330)
    await node2.start()
    assert await node2.why_void(who, int(time.time())) is None
    await tokens.revoke_grant("g1")
    await node2.sync()
    assert await node2.why_void(who, int(time.time())) == "grant revoked"


async def test_disabled_account_and_client(runtime: AuthRuntime, tokens: TokenService) -> None:
    account = await runtime.directory.create_account("mori")
    await runtime.directory.create_client("app", client_id="app2")
    token = await user_token(tokens, subject=account.id, client_id="app2")
    await tokens.validate(token)
    await runtime.directory.update_client("app2", status="disabled")
    await tokens.revocations.sync()
    with pytest.raises(InvalidToken, match="client"):
        await tokens.validate(token)
    await runtime.directory.update_client("app2", status="active")
    await tokens.revocations.sync()
    await tokens.validate(token)
    await runtime.directory.update_account(account.id, status="disabled")
    await tokens.revocations.sync()
    with pytest.raises(InvalidToken, match="account"):
        await tokens.validate(token)
    await runtime.directory.delete_client("app2")
    await tokens.revocations.sync()
    client_token, _ = await tokens.issue_access_token(
        subject="app2", kind="client", client_id="app2", scope="", roles=[], organization=None,
        tenant="")
    with pytest.raises(InvalidToken, match="client"):
        await tokens.validate(client_token)


async def test_rotate_now_keeps_old_tokens_until_retired_key_leaves(
        runtime: AuthRuntime, tokens: TokenService) -> None:
    old_kid = tokens.keys.current_kid
    old = await user_token(tokens)
    new_kid = await tokens.rotate_now()
    assert new_kid != old_kid and tokens.keys.current_kid == new_kid
    assert {k["kid"] for k in tokens.keys.jwks()["keys"]} == {old_kid, new_kid}
    new = await user_token(tokens, subject="acct-2")
    assert (await tokens.validate(old)).subject == "acct-1"
    assert (await tokens.validate(new)).subject == "acct-2"
    # the retired key's publication ends PUBLISH_AHEAD after retirement
    await runtime.db.execute("UPDATE auth_keys SET retired_at = ? WHERE kid = ?",
                             int(time.time()) - PUBLISH_AHEAD - 1, old_kid)
    tokens._cache.clear()
    await tokens.keys.maintain()
    assert [k["kid"] for k in tokens.keys.jwks()["keys"]] == [new_kid]
    with pytest.raises(InvalidToken, match="unknown signing key"):
        await tokens.validate(old)
    assert (await tokens.validate(new)).subject == "acct-2"


async def test_rotation_schedule(runtime: AuthRuntime) -> None:
    now = [1_000_000.0]
    day = 86400
    keys = SigningKeys(runtime.db, b"k" * 32, rotation=30 * day, clock=lambda: now[0])
    await runtime.db.execute("DELETE FROM auth_keys")
    await keys.ensure_current()
    first = keys.current_kid
    assert not await keys.maintain()                      # day 0: nothing due
    now[0] += 28 * day                                    # 2 days before rotation: publish next
    assert await keys.maintain()
    states = {r["state"] for r in await runtime.db.fetch("SELECT state FROM auth_keys")}
    assert states == {"current", "next"} and keys.current_kid == first
    now[0] += 2 * day                                     # promote
    assert await keys.maintain() and keys.current_kid != first
    other_node = SigningKeys(runtime.db, b"k" * 32, rotation=30 * day, clock=lambda: now[0])
    assert not await other_node._promote("whatever", int(now[0]))   # the race is lost cleanly
    assert len(keys.jwks()["keys"]) == 2                  # retired still published
    now[0] += 2 * day + 1
    assert await keys.maintain()
    assert [k["kid"] for k in keys.jwks()["keys"]] == [keys.current_kid]
    with pytest.raises(RuntimeError, match="secret key"):       # a node with another secret
        await SigningKeys(runtime.db, b"x" * 32, rotation=30 * day).load()


def test_secret_key_file(tmp_path: Path) -> None:
    settings = Settings.load(database_url=f"sqlite:///{tmp_path}/db/cityos.db")
    key = load_or_create(settings)
    path = tmp_path / "db" / "secret.key"
    assert len(key) == 32 and path.read_bytes() == key
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_or_create(settings) == key
    explicit = Settings.load(database_url="sqlite://", secret_key_file=str(tmp_path / "k"))
    assert load_or_create(explicit) == (tmp_path / "k").read_bytes()
    memory = Settings.load(database_url="sqlite://", secret_key_file="")
    assert len(load_or_create(memory)) == 32 and load_or_create(memory) == load_or_create(memory)
    assert load_or_create(memory) != key
    (tmp_path / "bad").write_bytes(b"short")
    with pytest.raises(ValueError):
        load_or_create(Settings.load(database_url="sqlite://", secret_key_file=str(tmp_path / "bad")))


async def test_insecure_runs_create_no_key_until_one_signs(database_url: str) -> None:
    from tests.conftest import _empty_postgres

    if database_url.startswith("postgresql"):
        await _empty_postgres(database_url)
    rt = build_auth(Settings.load(database_url=database_url, insecure_no_auth=True,
                                  public_url=BASE))
    await rt.start()
    try:
        assert await rt.db.fetch("SELECT kid FROM auth_keys") == []
        token = await user_token(rt.tokens)
        assert (await rt.tokens.validate(token)).subject == "acct-1"
        assert len(await rt.db.fetch("SELECT kid FROM auth_keys")) == 1
    finally:
        await rt.stop()
