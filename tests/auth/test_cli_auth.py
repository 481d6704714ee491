"""``cityos auth``: the local administration commands on a database file (and PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cityos.auth.runtime import build_auth
from cityos.core.settings import Settings
from cityos.ops.cli import app

PASSWORD = "correct horse battery"


@pytest.fixture
def db(database_url: str, tmp_path: Path) -> str:
    """A database that outlives each command: a SQLite file, or the emptied test PostgreSQL."""
    if database_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'cityos.db'}"
    from tests.conftest import _empty_postgres

    asyncio.run(_empty_postgres(database_url))
    return database_url


def run(db: str, *args: str, input: str | None = None, code: int = 0) -> Any:
    result = CliRunner().invoke(app, ["auth", *args, "--database", db], input=input,
                                env={"COLUMNS": "200", "CITYOS_PASSWORD_HASH": "t=1,m=1024,p=1"})
    assert result.exit_code == code, result.output
    return result


def run_json(db: str, *args: str, input: str | None = None) -> Any:
    return json.loads(run(db, *args, "--json", input=input).stdout)


def password_ok(db: str, username: str, password: str) -> bool:
    async def check() -> bool:
        runtime = build_auth(Settings.load(database_url=db, password_hash="t=1,m=1024,p=1"))
        await runtime.db.open()
        try:
            account = await runtime.directory.find_account(username)
            assert account is not None
            return await runtime.passwords.verify(account.password_hash, password)
        finally:
            await runtime.db.close()

    return asyncio.run(check())


def test_help_names_every_command() -> None:
    result = CliRunner().invoke(app, ["auth", "--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0
    for group, commands in {"accounts": ("create", "list", "show", "disable", "enable", "delete",
                                         "set-password", "unlock"),
                            "orgs": ("create", "list"), "roles": ("list",),
                            "clients": ("create", "list", "rotate-secret", "delete"),
                            "policies": ("list", "put", "delete")}.items():
        assert group in result.output
        sub = CliRunner().invoke(app, ["auth", group, "--help"], env={"COLUMNS": "120"})
        assert sub.exit_code == 0 and all(c in sub.output for c in commands), sub.output


def test_organizations_and_accounts(db: str) -> None:
    org = run_json(db, "orgs", "create", "kobe", "--name", "Kobe City", "--kind", "municipality",
                   "--home-tenant", "kobe")
    assert org["homeTenant"] == "kobe"
    assert [o["id"] for o in run_json(db, "orgs", "list")] == ["kobe"]
    run(db, "orgs", "create", "Bad Id", "--name", "x", code=1)
    account = run_json(db, "accounts", "create", "taro", "--name", "Taro", "--org", "kobe",
                       "-r", "developer", "-r", "resident", "--password-stdin",
                       input=PASSWORD + "\n")
    assert account["roles"] == ["developer", "resident"] and account["organization"] == "kobe"
    assert password_ok(db, "taro", PASSWORD)
    short = run(db, "accounts", "create", "jiro", "--password-stdin", input="short\n", code=1)
    assert "10 characters" in short.output
    # prompted twice (hidden, confirmed)
    run(db, "accounts", "create", "hanako", input=f"{PASSWORD}\n{PASSWORD}\n")
    assert password_ok(db, "hanako", PASSWORD)
    table = run(db, "accounts", "list").stdout
    assert "taro" in table and "hanako" in table
    assert [a["username"] for a in run_json(db, "accounts", "list", "--org", "kobe")] == ["taro"]
    assert run_json(db, "accounts", "show", "TARO")["id"] == account["id"]
    run(db, "accounts", "show", "nobody", code=1)
    run(db, "accounts", "disable", "taro")
    assert run_json(db, "accounts", "show", "taro")["status"] == "disabled"
    run(db, "accounts", "enable", account["id"])
    assert run_json(db, "accounts", "show", "taro")["status"] == "active"
    run(db, "accounts", "set-password", "taro", "--password-stdin", input="a new password\n")
    assert password_ok(db, "taro", "a new password")
    run(db, "accounts", "unlock", "taro")
    run(db, "accounts", "delete", "hanako", "--yes")
    assert [a["username"] for a in run_json(db, "accounts", "list")] == ["taro"]
    run(db, "accounts", "delete", "taro", input="n\n", code=1)      # not confirmed
    assert run_json(db, "accounts", "show", "taro")["status"] == "active"


def test_clients(db: str) -> None:
    created = run_json(db, "clients", "create", "Demo app", "--client-id", "demo-app",
                       "--redirect-uri", "http://127.0.0.1:8765/callback",
                       "--grant-type", "authorization_code", "--grant-type", "client_credentials",
                       "--scope", "openid", "--scope", "entities:read",
                       "--valid-until", "2027-04-01T00:00:00+09:00")
    assert created["clientSecret"] and created["validUntil"] == "2027-03-31T15:00:00Z"
    rotated = run_json(db, "clients", "rotate-secret", "demo-app")
    assert rotated["clientSecret"] != created["clientSecret"]
    bad = run(db, "clients", "create", "Bad", "--redirect-uri", "http://example.com/cb", code=1)
    assert "https" in bad.output
    assert "demo-app" in run(db, "clients", "list").stdout
    run(db, "clients", "delete", "demo-app")
    assert run_json(db, "clients", "list") == []
    run(db, "clients", "delete", "demo-app", code=1)


def test_policies_and_roles(db: str, tmp_path: Path) -> None:
    file = tmp_path / "policies.yaml"
    file.write_text("- id: dev-open-data\n  subject: {role: developer}\n"
                    "  actions: [entity.read]\n  tenants: ['@home']\n"
                    "  validFrom: 2026-04-01T00:00:00+09:00\n"
                    "  validUntil: '2027-04-01T00:00:00+09:00'\n"
                    "- id: auditors-kobe\n  subject: {role: auditor}\n  actions: [audit.read]\n"
                    "  tenants: [kobe]\n", encoding="utf-8")
    assert "stored policy dev-open-data" in run(db, "policies", "put", str(file)).stdout
    listed = {p["id"]: p for p in run_json(db, "policies", "list")}
    assert listed["dev-open-data"]["validFrom"] == "2026-03-31T15:00:00Z"
    assert listed["auditors-kobe"]["tenants"] == ["kobe"]
    assert "builtin-operator" in run(db, "policies", "list").stdout
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"id": "x", "subject": {"role": "developer"},
                                  "actions": ["fly"]}), encoding="utf-8")
    run(db, "policies", "put", str(broken), code=1)
    run(db, "policies", "delete", "auditors-kobe")
    run(db, "policies", "delete", "builtin-operator", code=1)
    roles = {r["name"] for r in run_json(db, "roles", "list")}
    assert {"resident", "operator", "platform-operator"} <= roles
