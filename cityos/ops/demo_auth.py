"""Demo identities for ``cityos serve --demo``: organizations, accounts, clients, a consent and an
open-data policy, so a developer can sign in and get a token within a minute (issue #4, DX).

Created once: each item is made only when missing, so a restart neither duplicates anything nor
rotates a secret.  Secrets exist only when an item is created (the directory keeps hashes), so
they go to ``demo-credentials.txt`` (mode 0600) beside the SQLite database and to the console;
later starts print where that file is.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import os
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from cityos.auth.directory import Policy, Purpose
from cityos.auth.login import new_recovery_codes, new_secret
from cityos.core.access import ACCOUNT_URN
from cityos.core.settings import Settings
from cityos.core.storage import engine_of, sqlite_path

log = logging.getLogger("cityos.demo")
FILE_NAME = "demo-credentials.txt"
# the full IRI: a short name would need the demo context in a Link header
DEMO_TYPE = "https://smartdatamodels.org/dataModel.Weather/WeatherObserved"
CALLBACK = "http://127.0.0.1:8765/callback"
ORGANIZATIONS = (("kobe-city", "Kobe City", "municipality"),
                 ("demo-services", "Demo Services Inc.", "service-provider"))
# username, role, organization
ACCOUNTS: tuple[tuple[str, str, str | None], ...] = (
    ("resident", "resident", None), ("developer", "developer", "demo-services"),
    ("operator", "operator", "kobe-city"), ("auditor", "auditor", "kobe-city"))
PURPOSE = Purpose("demo-navigation", "経路案内 / route guidance")
DEMO_APP_SCOPES = ("openid", "profile", "entities:read", "entities:write", "subscriptions",
                   "pd:location", "consent")
CONSOLE_SCOPES = ("openid", "profile", "entities:read", "entities:write", "subscriptions",
                  "csources", "iot", "systems", "import", "admin", "audit", "consent")
OPEN_DATA = Policy(id="demo-open-data", subject_kind="role", subject="anonymous",
                   actions=("entity.read",), tenants=("",),
                   description="The demo city is open data: anyone may read the default tenant.")


def credentials_path(settings: Settings) -> Path:
    """``<directory of the SQLite file>/demo-credentials.txt``; ``./cityos-data/`` otherwise."""
    if engine_of(settings.database_url) == "sqlite":
        db_file = sqlite_path(settings.database_url)
        if db_file:
            return Path(db_file).parent / FILE_NAME
    return Path("cityos-data") / FILE_NAME


def read_credentials(path: Path) -> dict[str, str]:
    """``name = value`` lines of the credentials file (comments and blanks skipped)."""
    if not path.is_file():
        return {}
    found: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if " = " in line and not line.startswith("#"):
            key, value = line.split(" = ", 1)
            found[key.strip()] = value.strip()
    return found


def _write_credentials(path: Path, values: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["# CityOS demo credentials (cityos serve --demo). Keep this file private.",
             "# Written once; delete the database to start over.", ""]
    lines += [f"{key} = {value}" for key, value in values.items()]
    # created 0600 before any secret is written, and chmod again if it existed with wider bits
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    os.chmod(path, 0o600)


async def ensure_demo_auth(runtime: Any) -> tuple[Path, dict[str, str], bool]:
    """Create what is missing; (credentials file, its values, whether anything was created)."""
    directory = runtime.directory
    path = credentials_path(runtime.settings)
    created: dict[str, str] = {}
    for org_id, name, kind in ORGANIZATIONS:
        if await directory.get_organization(org_id) is None:
            try:
                await directory.create_organization(org_id, name, kind, "")
            except Exception:
                # PostgreSQL with --workers: another worker of this start won the first insert
                # and creates the rest; let it, rather than race it for secrets nobody records
                if await directory.get_organization(org_id) is None:
                    raise
                await _wait_for(directory)
                return path, read_credentials(path), False
    for username, role, member_of in ACCOUNTS:
        if await directory.find_account(username) is None:
            password = secrets.token_urlsafe(12)
            account = await directory.create_account(
                username, password_hash=await runtime.passwords.hash(password),
                name=f"Demo {role}", organization_id=member_of, roles=(role,))
            created[f"{username}.password"] = password
            if username == "resident":
                created.update(await _enrol_totp(runtime, account.id))
    created.update(await _ensure_clients(runtime))
    if await directory.get_policy(OPEN_DATA.id) is None:
        await directory.put_policy(OPEN_DATA)
    await _ensure_consent(runtime)
    await runtime.evaluator.refresh(force=True)
    values = read_credentials(path)
    if created:
        values.update(created)
        _write_credentials(path, values)
    return path, values, bool(created)


async def _wait_for(directory: Any, timeout: float = 60.0) -> None:
    """Until the other worker has written its last directory item (the open-data policy)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while (await directory.get_policy(OPEN_DATA.id) is None
           and asyncio.get_running_loop().time() < deadline):
        await asyncio.sleep(0.2)


async def _enrol_totp(runtime: Any, account_id: str) -> dict[str, str]:
    """Enrol TOTP through the login part's store, so the secret works in an authenticator app."""
    login = next((p for p in runtime.parts if hasattr(p, "totp")), None)
    if login is None:
        return {}
    secret, recovery = new_secret(), new_recovery_codes()
    await login.totp.enrol(account_id, secret, 0, recovery)
    return {"resident.totp_secret": secret, "resident.recovery_codes": " ".join(recovery)}


async def _ensure_clients(runtime: Any) -> dict[str, str]:
    directory = runtime.directory
    out: dict[str, str] = {}
    if await directory.get_client("demo-app") is None:
        _, secret = await directory.create_client(
            "Demo App", client_id="demo-app", organization_id="demo-services",
            auth_method="client_secret_basic", redirect_uris=(CALLBACK,),
            grant_types=("authorization_code", "refresh_token", "client_credentials"),
            scopes=DEMO_APP_SCOPES, roles=("developer",), purposes=(PURPOSE,))
        if secret:
            out["demo-app.client_secret"] = secret
    redirect = f"{runtime.public_url}/docs/oauth2-redirect"
    console = await directory.get_client("cityos-console")
    if console is None:
        await directory.create_client(
            "CityOS API console", client_id="cityos-console", auth_method="none",
            redirect_uris=(redirect,), grant_types=("authorization_code", "refresh_token"),
            scopes=CONSOLE_SCOPES, trusted=True)
    elif redirect not in console.redirect_uris:
        # served on another host or port since: the console's sign-in must still come back
        await directory.update_client("cityos-console",
                                      redirect_uris=(*console.redirect_uris, redirect))
    return out


async def _ensure_consent(runtime: Any) -> None:
    account = await runtime.directory.find_account("resident")
    if account is None or runtime.consents is None:
        return
    owner = ACCOUNT_URN + account.id
    live = [c for c in await runtime.consents.list(owner)
            if c.state == "given" and c.processor_org == "demo-services"
            and c.purpose == PURPOSE.id and c.category == "location"]
    if not live:
        await runtime.consents.give(owner, "location", "demo-services", PURPOSE.id,
                                    controller="Demo Services Inc.", service="Demo App",
                                    purpose_text=PURPOSE.text, collection_method="cityos serve --demo")


def code_flow_url(public_url: str) -> tuple[str, str]:
    """The authorization URL of demo-app (PKCE S256, RFC 7636 §4.2) and its code_verifier."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    query = urlencode({"response_type": "code", "client_id": "demo-app", "redirect_uri": CALLBACK,
                       "scope": "openid profile entities:read", "state": secrets.token_urlsafe(8),
                       "code_challenge": challenge.rstrip(b"=").decode(),
                       "code_challenge_method": "S256"})
    return f"{public_url}/auth/authorize?{query}", verifier


def announce(public_url: str, path: Path, values: dict[str, str], created: bool) -> None:
    """Print the demo identities (rich) to stderr; secrets only on the start that created them."""
    from rich.console import Console
    from rich.markup import escape

    console = Console(stderr=True)
    if not created:
        console.print(f"[bold]Demo accounts and clients[/] exist; their credentials are in "
                      f"[cyan]{escape(str(path))}[/] (see docs/auth.md).", soft_wrap=True)
        return
    console.print(f"[bold green]Demo identities created[/] — credentials saved to "
                  f"[cyan]{escape(str(path))}[/] (0600):", soft_wrap=True)
    for key, value in values.items():
        if key != "resident.recovery_codes":
            console.print(f"  {escape(key):32} {escape(value)}")
    secret = values.get("demo-app.client_secret", "<demo-app secret>")
    url, verifier = code_flow_url(public_url)
    console.print("\n[bold]Code flow[/] (sign in as resident; code_verifier "
                  f"{escape(verifier)}):\n  {escape(url)}", soft_wrap=True)
    console.print("\n[bold]Client credentials[/]:", soft_wrap=True)
    console.print(escape(f"  TOKEN=$(curl -s -u demo-app:{secret} -d grant_type=client_credentials "
                         f"-d scope=entities:read {public_url}/auth/token | jq -r .access_token)"),
                  soft_wrap=True)
    console.print(escape(f'  curl -H "Authorization: Bearer $TOKEN" '
                         f'"{public_url}/ngsi-ld/v1/entities?type={DEMO_TYPE}&limit=2"'),
                  soft_wrap=True)


async def start_demo_auth(runtime: Any) -> None:
    """The start-up hook: ensure the demo identities and tell the console about them."""
    path, values, created = await ensure_demo_auth(runtime)
    log.info("demo identities ready (credentials in %s)", path)
    announce(runtime.public_url, path, values, created)
