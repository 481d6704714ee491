"""The CLI with access control on: local commands act as the system (they opened the database
themselves), commands against a running server send the token in CITYOS_TOKEN."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cityos.auth.directory import opened_directory
from cityos.ops.cli import app
from tests.e2e.server import running_server

runner = CliRunner()


def test_local_commands_need_no_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITYOS_INSECURE_NO_AUTH", "0")
    db = ["--database", f"sqlite:///{tmp_path}/cli.db"]
    added = runner.invoke(app, ["devices", "add", "--id", "lamp1", "--type", "Streetlight",
                                "--apikey", "k1", *db])
    assert added.exit_code == 0, added.output
    assert "lamp1" in runner.invoke(app, ["devices", "list", *db]).output


async def _operator_app(url: str) -> str:
    async with opened_directory(url) as directory:
        _, secret = await directory.create_client(
            "ops", client_id="ops", grant_types=("client_credentials",), roles=("operator",),
            scopes=("iot", "entities:read", "entities:write"))
    assert secret is not None
    return secret


def test_remote_commands_send_the_token_from_the_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import httpx

    url = f"sqlite:///{tmp_path}/city.db"
    secret = asyncio.run(_operator_app(url))
    with running_server(url, env={"CITYOS_INSECURE_NO_AUTH": "0"}) as base:
        monkeypatch.delenv("CITYOS_TOKEN", raising=False)
        refused = runner.invoke(app, ["devices", "list", "--url", base])
        assert refused.exit_code != 0 and "401" in refused.output
        token = httpx.post(f"{base}/auth/token", auth=("ops", secret), data={
            "grant_type": "client_credentials", "scope": "iot"}).json()["access_token"]
        monkeypatch.setenv("CITYOS_TOKEN", token)
        added = runner.invoke(app, ["devices", "add", "--id", "lamp2", "--type", "Streetlight",
                                    "--apikey", "k2", "--url", base])
        assert added.exit_code == 0, added.output
        assert "lamp2" in runner.invoke(app, ["devices", "list", "--url", base]).output


def test_rotate_keys_publishes_a_new_signing_key(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITYOS_SECRET_KEY_FILE", str(tmp_path / "secret.key"))
    db = ["--database", f"sqlite:///{tmp_path}/keys.db"]
    first = runner.invoke(app, ["auth", "rotate-keys", *db])
    second = runner.invoke(app, ["auth", "rotate-keys", *db])
    assert first.exit_code == second.exit_code == 0, first.output + second.output
    kid_1, kid_2 = first.output.split()[-1], second.output.split()[-1]
    assert kid_1 != kid_2

    async def published() -> set[str]:
        from cityos.auth import build_auth
        from cityos.core.settings import Settings

        runtime = build_auth(Settings.load(database_url=db[1], insecure_no_auth=False))
        await runtime.start()
        try:
            body = runtime.tokens.keys.jwks()
            return {key["kid"] for key in body["keys"]}
        finally:
            await runtime.stop()

    assert {kid_1, kid_2} <= asyncio.run(published())
