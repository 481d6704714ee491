"""TOTP multi-factor login and step-up: enrolment, challenge, no replay, recovery codes, and the
``acr``/``amr`` of the codes issued afterwards (ADR 0012 §6), on both engines."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import pyotp

from cityos.auth.login import LoginPart
from cityos.auth.login.totp import STEP, new_recovery_codes
from cityos.auth.provider.codes import consume_code
from tests.auth.test_login_pages import (
    BASE,
    PASSWORD,
    auth_params,
    csrf_of,
    make_client,
    make_user,
    query_of,
    sign_in,
)

PD = "openid pd:health"


def part_of(app: Any) -> LoginPart:
    return next(p for p in app.state.auth.parts if isinstance(p, LoginPart))


def browser(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE)


async def enrolled_user(app: Any) -> tuple[Any, pyotp.TOTP, list[str]]:
    """An account with TOTP whose last accepted step lies in the past."""
    user = await make_user(app)
    secret, codes = pyotp.random_base32(), new_recovery_codes()
    await part_of(app).totp.enrol(user.id, secret, int(time.time()) // STEP - 5, codes)
    return user, pyotp.TOTP(secret), codes


async def challenge(web: httpx.AsyncClient, location: str, code: str) -> httpx.Response:
    assert location.startswith("/auth/mfa?"), location
    page = await web.get(location)
    assert page.status_code == 200 and 'name="code"' in page.text
    return await web.post("/auth/mfa", data={"csrf": csrf_of(page.text), "code": code,
                                             "next": query_of(location)["next"]})


async def test_pd_scope_forces_enrolment_then_mfa_code(auth_app: Any,
                                                       auth_client: httpx.AsyncClient) -> None:
    user, client = await make_user(auth_app), await make_client(auth_app)
    step = await sign_in(auth_client, auth_params(client, scope=PD), user.username)
    assert step.status_code == 302 and step.headers["location"].startswith("/auth/mfa/setup?")
    page = await auth_client.get(step.headers["location"])
    next_url = query_of(step.headers["location"])["next"]
    wrong = await auth_client.post("/auth/mfa/setup", data={
        "csrf": csrf_of(page.text), "next": next_url, "password": "not my password"})
    assert "secret" not in wrong.text and 'name="password"' in wrong.text
    scan = await auth_client.post("/auth/mfa/setup", data={
        "csrf": csrf_of(page.text), "next": next_url, "password": PASSWORD})
    assert "<svg" in scan.text and 'name="enrolment"' in scan.text
    secret = re.search(r'<code id="secret">([A-Z2-7]+)</code>', scan.text).group(1)  # type: ignore[union-attr]
    enrolment = re.search(r'name="enrolment" value="([^"]+)"', scan.text).group(1)  # type: ignore[union-attr]
    before = auth_client.cookies.get("cityos_sso")
    done = await auth_client.post("/auth/mfa/setup", data={
        "csrf": csrf_of(scan.text), "next": next_url, "enrolment": enrolment,
        "code": pyotp.TOTP(secret).now()})
    assert done.status_code == 200
    assert len(re.findall(r"<li><code>[a-z2-9]{5}-[a-z2-9]{5}</code></li>", done.text)) == 10
    after = auth_client.cookies.get("cityos_sso")
    assert after and after != before                     # a new session id after MFA
    async with browser(auth_app) as thief:                # the old id is dead
        thief.cookies.set("cityos_sso", before or "")
        stolen = await thief.get("/auth/authorize", params=auth_params(client))
        assert stolen.headers["location"].startswith("/auth/login?")
    issued = await auth_client.get(next_url)
    record, _ = await consume_code(auth_app.state.auth.db, query_of(issued.headers["location"])["code"])
    assert record is not None and record.scope == PD
    assert record.acr == "urn:cityos:acr:mfa" and record.amr == ("pwd", "otp", "mfa")


async def test_challenge_and_replayed_code_refused(auth_app: Any) -> None:
    (user, totp, _), client = await enrolled_user(auth_app), await make_client(auth_app)
    code = totp.now()
    async with browser(auth_app) as first, browser(auth_app) as second:
        step = await sign_in(first, auth_params(client, scope=PD), user.username)
        passed = await challenge(first, step.headers["location"], code)
        assert passed.status_code == 303
        issued = await first.get(passed.headers["location"])
        assert "code" in query_of(issued.headers["location"])
        # the same code in another session, within its 30 s window: refused (RFC 6238 §5.2)
        step = await sign_in(second, auth_params(client, scope=PD), user.username)
        replay = await challenge(second, step.headers["location"], code)
        assert replay.status_code == 200 and "not valid" in replay.text


async def test_recovery_code_works_once(auth_app: Any) -> None:
    (user, _, codes), client = await enrolled_user(auth_app), await make_client(auth_app)
    async with browser(auth_app) as first, browser(auth_app) as second:
        step = await sign_in(first, auth_params(client, scope=PD), user.username)
        assert (await challenge(first, step.headers["location"], codes[3].upper())).status_code == 303
        step = await sign_in(second, auth_params(client, scope=PD), user.username)
        assert (await challenge(second, step.headers["location"], codes[3])).status_code == 200
        assert (await challenge(second, step.headers["location"], codes[4])).status_code == 303


async def test_step_up_by_acr_values_and_prompt_none(auth_app: Any,
                                                     auth_client: httpx.AsyncClient) -> None:
    (user, totp, _), client = await enrolled_user(auth_app), await make_client(auth_app)
    plain = await sign_in(auth_client, auth_params(client), user.username)
    assert "code" in query_of(plain.headers["location"])           # no MFA needed
    none = await auth_client.get("/auth/authorize", params=auth_params(client, scope=PD,
                                                                      prompt="none"))
    assert query_of(none.headers["location"])["error"] == "interaction_required"
    step = await auth_client.get("/auth/authorize", params=auth_params(
        client, acr_values="urn:cityos:acr:mfa"))
    assert step.headers["location"].startswith("/auth/mfa?")
    bad = await challenge(auth_client, step.headers["location"], "000000" if totp.now() != "000000"
                          else "111111")
    assert bad.status_code == 200 and "not valid" in bad.text
    passed = await challenge(auth_client, step.headers["location"], totp.now())
    issued = await auth_client.get(passed.headers["location"])
    record, _ = await consume_code(auth_app.state.auth.db, query_of(issued.headers["location"])["code"])
    assert record is not None and record.acr == "urn:cityos:acr:mfa"
    # MFA done: pd:* now goes straight through, also with prompt=none
    direct = await auth_client.get("/auth/authorize", params=auth_params(client, scope=PD,
                                                                        prompt="none"))
    assert "code" in query_of(direct.headers["location"])


async def test_mfa_csrf_and_setup_when_enrolled(auth_app: Any, auth_client: httpx.AsyncClient) -> None:
    (user, totp, _), client = await enrolled_user(auth_app), await make_client(auth_app)
    step = await sign_in(auth_client, auth_params(client, scope=PD), user.username)
    refused = await auth_client.post("/auth/mfa", data={"code": totp.now(), "csrf": "x",
                                                        "next": query_of(step.headers["location"])["next"]})
    assert refused.status_code == 403
    again = await auth_client.get("/auth/mfa/setup")             # no re-enrolment without MFA
    assert again.status_code == 409
