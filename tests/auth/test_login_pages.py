"""The browser side of the OpenID provider: login form, SSO session, CSRF, lockout, the
authorization endpoint's checks, approval and logout (ADR 0012 §5), on both engines."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from cityos.auth.provider.codes import consume_code

BASE = "http://testserver"
PASSWORD = "correct horse battery"


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    return verifier, challenge.decode()


async def make_user(app: Any, password: str = PASSWORD, **fields: Any) -> Any:
    runtime = app.state.auth
    return await runtime.directory.create_account(
        f"user-{uuid.uuid4().hex[:8]}", password_hash=await runtime.passwords.hash(password),
        **fields)


async def make_client(app: Any, *, trusted: bool = True, redirect: str = "https://rp.example/cb") -> Any:
    client, _ = await app.state.auth.directory.create_client(
        f"rp-{uuid.uuid4().hex[:6]}", redirect_uris=(redirect,), trusted=trusted,
        scopes=("openid", "profile", "entities:read", "pd:health"),
        post_logout_redirect_uris=("https://rp.example/bye",))
    return client


def auth_params(client: Any, scope: str = "openid entities:read", **extra: str) -> dict[str, str]:
    params = {"response_type": "code", "client_id": client.client_id,
              "redirect_uri": client.redirect_uris[0], "scope": scope, "state": "st-1",
              "nonce": "n-1", "code_challenge": pkce()[1], "code_challenge_method": "S256"}
    params.update(extra)
    return {k: v for k, v in params.items() if v != ""}


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


async def login(browser: httpx.AsyncClient, next_url: str, username: str,
                password: str = PASSWORD, **headers: str) -> httpx.Response:
    form = await browser.get(next_url)
    assert form.status_code == 200, form.text
    return await browser.post("/auth/login", headers=headers, data={
        "csrf": csrf_of(form.text), "next": query_of(next_url).get("next", ""),
        "username": username, "password": password})


async def sign_in(browser: httpx.AsyncClient, params: dict[str, str], username: str) -> httpx.Response:
    """authorize -> login form -> back to authorize: the final authorize response."""
    first = await browser.get("/auth/authorize", params=params)
    assert first.status_code == 302 and first.headers["location"].startswith("/auth/login?")
    posted = await login(browser, first.headers["location"], username)
    assert posted.status_code == 303, posted.text
    return await browser.get(posted.headers["location"])


async def test_login_form_then_code(auth_app: Any, auth_client: httpx.AsyncClient) -> None:
    user, client = await make_user(auth_app), await make_client(auth_app)
    params = auth_params(client)
    first = await auth_client.get("/auth/authorize", params=params)
    page = await auth_client.get(first.headers["location"])
    assert page.headers["content-security-policy"] == "default-src 'self'; frame-ancestors 'none'"
    assert 'name="username"' in page.text and 'name="password"' in page.text
    assert (await auth_client.get("/auth/static/login.css")).headers["content-type"].startswith("text/css")
    done = await sign_in(auth_client, params, user.username)
    assert done.status_code == 302
    assert done.headers["location"].startswith("https://rp.example/cb?")
    answer = query_of(done.headers["location"])
    assert answer["state"] == "st-1" and answer["iss"] == BASE
    record, reused = await consume_code(auth_app.state.auth.db, answer["code"])
    assert record is not None and not reused
    assert record.account_id == user.id and record.client_id == client.client_id
    assert record.scope == "openid entities:read" and record.nonce == "n-1"
    assert record.code_challenge == params["code_challenge"]
    assert record.acr == "urn:cityos:acr:pwd" and record.amr == ("pwd",) and record.session_id
    assert len(auth_client.cookies.get("cityos_sso") or "") >= 43     # 256 random bits


async def test_failures_same_message(auth_app: Any, auth_client: httpx.AsyncClient) -> None:
    user = await make_user(auth_app)
    disabled = await make_user(auth_app)
    await auth_app.state.auth.directory.update_account(disabled.id, status="disabled")
    texts = set()
    for name, password in ((user.username, "wrong password!"), ("nobody-here", PASSWORD),
                           (disabled.username, PASSWORD)):
        answer = await login(auth_client, "/auth/login", name, password)
        assert answer.status_code == 200 and "cityos_sso" not in answer.cookies
        texts.add(re.search(r'class="error"[^>]*>([^<]+)<', answer.text).group(1))  # type: ignore[union-attr]
    assert len(texts) == 1 and "incorrect" in texts.pop()


async def test_lockout_after_ten_failures(auth_app: Any, auth_client: httpx.AsyncClient) -> None:
    user = await make_user(auth_app)
    for _ in range(10):
        await login(auth_client, "/auth/login", user.username, "wrong password!")
    locked = await auth_app.state.auth.directory.get_account(user.id)
    assert locked.locked_until > 0
    answer = await login(auth_client, "/auth/login", user.username)       # right password
    assert "incorrect" in answer.text and "cityos_sso" not in auth_client.cookies
    rows = await auth_app.state.auth.db.fetch(
        "SELECT event FROM audit_log WHERE actor_sub = ? AND event LIKE 'auth.%'", user.id)
    events = [r["event"] for r in rows]
    assert events.count("auth.login_failed") == 9 and events.count("auth.locked") == 1


async def test_login_rehashes_old_parameters(auth_app: Any, auth_client: httpx.AsyncClient) -> None:
    from argon2 import PasswordHasher

    runtime = auth_app.state.auth
    old = PasswordHasher(time_cost=2, memory_cost=1024, parallelism=1).hash(PASSWORD)
    user = await runtime.directory.create_account(f"old-{uuid.uuid4().hex[:6]}", password_hash=old)
    assert (await login(auth_client, "/auth/login", user.username)).status_code == 200
    stored = (await runtime.directory.get_account(user.id)).password_hash
    assert stored != old and not runtime.passwords.needs_rehash(stored)


async def test_per_ip_throttle(auth_app: Any, auth_client: httpx.AsyncClient) -> None:
    statuses = [(await login(auth_client, "/auth/login", f"ghost-{i}", "x" * 12)).status_code
                for i in range(21)]
    assert statuses[:20] == [200] * 20 and statuses[20] == 429


async def test_csrf_and_cross_origin_refused(auth_app: Any, auth_client: httpx.AsyncClient) -> None:
    user = await make_user(auth_app)
    token = csrf_of((await auth_client.get("/auth/login")).text)
    form = {"username": user.username, "password": PASSWORD}
    assert (await auth_client.post("/auth/login", data=form)).status_code == 403
    assert (await auth_client.post("/auth/login", data={**form, "csrf": "0" * 64})).status_code == 403
    good = {**form, "csrf": token}
    for headers in ({"origin": "https://evil.example"}, {"sec-fetch-site": "cross-site"},
                    {"referer": "https://evil.example/page"}, {"origin": "null"}):
        refused = await auth_client.post("/auth/login", data=good, headers=headers)
        assert refused.status_code == 403 and "cityos_sso" not in auth_client.cookies
    ok = await auth_client.post("/auth/login", data=good, headers={"origin": BASE})
    assert ok.status_code == 200 and "cityos_sso" in auth_client.cookies
    # another browser's token (other pre-session) is refused
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=auth_app), base_url=BASE) as other:
        await other.get("/auth/login")
        assert (await other.post("/auth/login", data=good)).status_code == 403


async def test_redirect_uri_exact_match(auth_app: Any, auth_client: httpx.AsyncClient) -> None:
    client = await make_client(auth_app)
    for wrong in ("https://rp.example/cb/", "https://rp.example/cb?x=1", "https://rp.example/CB",
                  "https://evil.example/cb", ""):
        answer = await auth_client.get("/auth/authorize",
                                       params={**auth_params(client), "redirect_uri": wrong})
        assert answer.status_code == 400 and "location" not in answer.headers
    unknown = await auth_client.get("/auth/authorize", params={**auth_params(client), "client_id": "x"})
    assert unknown.status_code == 400 and "location" not in unknown.headers
    native = await make_client(auth_app, redirect="http://127.0.0.1/callback")
    ok = await auth_client.get("/auth/authorize", params={
        **auth_params(native), "redirect_uri": "http://127.0.0.1:53123/callback"})
    assert ok.status_code == 302 and ok.headers["location"].startswith("/auth/login?")
    other_path = await auth_client.get("/auth/authorize", params={
        **auth_params(native), "redirect_uri": "http://127.0.0.1:53123/other"})
    assert other_path.status_code == 400


async def test_errors_redirected(auth_app: Any, auth_client: httpx.AsyncClient) -> None:
    client = await make_client(auth_app)
    cases = [({"code_challenge": ""}, "invalid_request"),
             ({"code_challenge_method": "plain"}, "invalid_request"),
             ({"code_challenge_method": ""}, "invalid_request"),
             ({"response_type": "token"}, "unsupported_response_type"),
             ({"scope": "openid admin"}, "invalid_scope")]
    for change, error in cases:
        answer = await auth_client.get("/auth/authorize", params=auth_params(client, **change))
        assert answer.status_code == 302, change
        got = query_of(answer.headers["location"])
        assert answer.headers["location"].startswith("https://rp.example/cb?")
        assert got["error"] == error and got["state"] == "st-1" and got["iss"] == BASE


async def test_sso_second_client_and_prompt(auth_app: Any, auth_client: httpx.AsyncClient) -> None:
    user = await make_user(auth_app)
    first, second = await make_client(auth_app), await make_client(auth_app)
    none = await auth_client.get("/auth/authorize", params=auth_params(first, prompt="none"))
    assert query_of(none.headers["location"])["error"] == "login_required"   # no session yet
    await sign_in(auth_client, auth_params(first), user.username)
    again = await auth_client.get("/auth/authorize", params=auth_params(second))
    assert again.status_code == 302 and "code" in query_of(again.headers["location"])
    forced = await auth_client.get("/auth/authorize", params=auth_params(second, prompt="login"))
    assert forced.headers["location"].startswith("/auth/login?")
    assert "prompt" not in query_of(query_of(forced.headers["location"])["next"])
    aged = await auth_client.get("/auth/authorize", params=auth_params(second, max_age="-1"))
    assert query_of(aged.headers["location"])["error"] == "invalid_request"
    # the login form only ever returns to a relative /auth/authorize URL
    for evil in ("https://evil.example/", "//evil.example/auth/authorize?x", "/me/sessions"):
        form = await auth_client.get("/auth/login", params={"next": evil})
        assert 'name="next" value=""' in form.text


async def test_approval_for_untrusted_client(auth_app: Any, auth_client: httpx.AsyncClient) -> None:
    user, client = await make_user(auth_app), await make_client(auth_app, trusted=False)
    answer = await sign_in(auth_client, auth_params(client), user.username)
    assert answer.status_code == 302 and answer.headers["location"].startswith("/auth/approve?")
    page = await auth_client.get(answer.headers["location"])
    assert client.name in page.text and "entities:read" in page.text
    next_url = query_of(answer.headers["location"])["next"]
    denied = await auth_client.post("/auth/approve", data={
        "csrf": csrf_of(page.text), "next": next_url, "decision": "deny"})
    assert query_of(denied.headers["location"])["error"] == "access_denied"
    allowed = await auth_client.post("/auth/approve", data={
        "csrf": csrf_of(page.text), "next": next_url, "decision": "approve"})
    assert allowed.status_code == 303 and allowed.headers["location"] == next_url
    done = await auth_client.get(next_url)
    assert "code" in query_of(done.headers["location"])
    later = await auth_client.get("/auth/authorize", params=auth_params(client))   # remembered
    assert "code" in query_of(later.headers["location"])


async def test_logout_with_registered_redirect(auth_app: Any, auth_client: httpx.AsyncClient) -> None:
    user, client = await make_user(auth_app), await make_client(auth_app)
    await sign_in(auth_client, auth_params(client), user.username)
    bad = await auth_client.get("/auth/logout", params={
        "client_id": client.client_id, "post_logout_redirect_uri": "https://rp.example/bye/"})
    assert bad.status_code == 400 and "location" not in bad.headers
    page = await auth_client.get("/auth/logout", params={
        "client_id": client.client_id, "post_logout_redirect_uri": "https://rp.example/bye",
        "state": "s-9"})
    assert page.status_code == 200 and 'name="post_logout_redirect_uri"' in page.text
    done = await auth_client.post("/auth/logout", data={
        "csrf": csrf_of(page.text), "client_id": client.client_id,
        "post_logout_redirect_uri": "https://rp.example/bye", "state": "s-9"})
    assert done.status_code == 303 and done.headers["location"] == "https://rp.example/bye?state=s-9"
    after = await auth_client.get("/auth/authorize", params=auth_params(client))
    assert after.headers["location"].startswith("/auth/login?")


async def test_logout_by_id_token_hint(auth_app: Any, auth_client: httpx.AsyncClient) -> None:
    runtime = auth_app.state.auth
    user, client = await make_user(auth_app), await make_client(auth_app)
    done = await sign_in(auth_client, auth_params(client), user.username)
    record, _ = await consume_code(runtime.db, query_of(done.headers["location"])["code"])
    assert record is not None
    access, _ = await runtime.tokens.issue_access_token(
        subject=user.id, kind="user", client_id=client.client_id, scope="openid", roles=["resident"],
        organization=None, tenant="", sid=record.session_id)
    bearer = {"authorization": f"Bearer {access}"}
    assert (await auth_client.get("/me/sessions", headers=bearer)).json()["sessions"][0]["current"]
    hint = await runtime.tokens.issue_id_token(
        subject=user.id, client_id=client.client_id, nonce=None, auth_time=record.auth_time,
        acr=record.acr, amr=record.amr, sid=record.session_id, extra_claims={})
    forged = hint.rsplit(".", 1)[0] + ".AAAA"
    bad = await auth_client.get("/auth/logout", params={"id_token_hint": forged,
                                                       "post_logout_redirect_uri": "https://rp.example/bye"})
    assert bad.status_code == 400
    page = await auth_client.get("/auth/logout", params={
        "id_token_hint": hint, "post_logout_redirect_uri": "https://rp.example/bye"})
    assert f'name="client_id" value="{client.client_id}"' in page.text
    out = await auth_client.post("/auth/logout", data={
        "csrf": csrf_of(page.text), "client_id": client.client_id,
        "post_logout_redirect_uri": "https://rp.example/bye"})
    assert out.status_code == 303 and out.headers["location"] == "https://rp.example/bye"
    assert (await auth_client.get("/me/sessions", headers=bearer)).status_code == 401


async def test_japanese_page(auth_app: Any, auth_client: httpx.AsyncClient) -> None:
    ja = await auth_client.get("/auth/login", headers={"accept-language": "ja,en;q=0.8"})
    assert 'lang="ja"' in ja.text and "ログイン" in ja.text and "パスワード" in ja.text
    en = await auth_client.get("/auth/login", headers={"accept-language": "en-US,ja;q=0.5"})
    assert 'lang="en"' in en.text and "Password" in en.text


async def test_my_sessions_and_logout_everywhere(auth_app: Any, auth_client: httpx.AsyncClient,
                                                 token_for: Any) -> None:
    user, client = await make_user(auth_app), await make_client(auth_app)
    await sign_in(auth_client, auth_params(client), user.username)
    token = await token_for(subject=user.id)
    bearer = {"authorization": f"Bearer {token}"}
    listed = await auth_client.get("/me/sessions", headers=bearer)
    assert listed.status_code == 200 and len(listed.json()["sessions"]) == 1
    assert (await auth_client.delete("/me/sessions", headers=bearer)).status_code == 204
    assert (await auth_client.get("/me/sessions", headers=bearer)).status_code == 401  # sub cut off
    after = await auth_client.get("/auth/authorize", params=auth_params(client))
    assert after.headers["location"].startswith("/auth/login?")
