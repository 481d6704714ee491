"""``/assets/v1/systems``: register, list, show, delete; validation and the SSRF guard; the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from cityos.ops.cli import app as cli
from tests.e2e.server import free_port

SYSTEMS = "/assets/v1/systems"
ORION = {"id": "kobe-orion", "name": "神戸市 Orion", "kind": "orion-v2",
         "url": "https://orion.example.jp:1026", "interval": 300, "enabled": False,
         "options": {"service": "kobe", "servicePath": "/sensors"}}


async def test_register_list_show_delete(client: httpx.AsyncClient) -> None:
    created = await client.post(SYSTEMS, json=ORION)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["status"] == "never" and body["runs"] == 0 and body["lastRunAt"] is None
    assert (await client.post(SYSTEMS, json=ORION)).status_code == 409
    listed = (await client.get(SYSTEMS)).json()
    assert [s["id"] for s in listed] == ["kobe-orion"]
    assert (await client.get(SYSTEMS, headers={"NGSILD-Tenant": "osaka"})).json() == []
    shown = (await client.get(f"{SYSTEMS}/kobe-orion")).json()
    assert shown["name"] == "神戸市 Orion" and shown["options"]["servicePath"] == "/sensors"
    assert not any(key.startswith("_") for key in shown)
    assert (await client.delete(f"{SYSTEMS}/kobe-orion")).status_code == 204
    missing = await client.get(f"{SYSTEMS}/kobe-orion")
    assert missing.status_code == 404
    assert missing.json()["detail"] == "no external system 'kobe-orion'"
    assert (await client.delete(f"{SYSTEMS}/kobe-orion")).status_code == 404


@pytest.mark.parametrize(("change", "message"), [
    ({"kind": "ftp"}, "'kind' must be one of"),
    ({"url": "file:///etc/passwd"}, "scheme 'file' is not supported"),
    ({"url": "http://169.254.169.254/latest/meta-data"}, "CityOS may not pull from"),
    ({"url": "http://10.0.0.8:1026"}, "private or reserved"),
    ({"url": "http://localhost:1026"}, "loopback"),
    ({"interval": 0}, "'interval'"),
    ({"id": "has space"}, "'id' must be"),
    ({"options": {"selector": "$"}}, "not understood by kind orion-v2"),
    ({"kind": "rest-json", "options": {}}, "needs options.mapping"),
    ({"kind": "rest-json", "options": {"mapping": {"type": "X"}}}, "options.mapping"),
    ({"kind": "ngsi-ld", "options": {}}, "needs options.type"),
    ({"kind": "csv-url", "options": {"dataset": "99"}}, "not a recommended dataset"),
    ({"surprise": 1}, "unknown member"),
])
async def test_bad_registrations_are_400(client: httpx.AsyncClient, change: dict[str, object],
                                         message: str) -> None:
    response = await client.post(SYSTEMS, json={**ORION, **change})
    assert response.status_code == 400, response.text
    assert message in response.json()["detail"]
    assert (await client.get(SYSTEMS)).json() == []


async def test_malformed_json_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post(SYSTEMS, content=b"{not json")
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/")
    assert "not valid JSON" in response.json()["detail"]


def test_cli_systems_against_a_local_database(tmp_path: Path) -> None:
    runner = CliRunner()
    database = f"sqlite:///{tmp_path / 'city.db'}"
    env = {"CITYOS_NOTIFICATION_ALLOW": "127.0.0.1", "COLUMNS": "200"}
    dead = f"http://127.0.0.1:{free_port()}"            # nothing listens there
    added = runner.invoke(cli, ["systems", "add", "dead", "orion-v2", dead, "--interval", "60",
                                "--option", "service=kobe", "--option", "pageSize=50",
                                "--disabled", "--database", database], env=env)
    assert added.exit_code == 0, added.output
    assert "registered dead" in added.output
    run = runner.invoke(cli, ["systems", "run", "dead", "--database", database], env=env)
    assert run.exit_code == 1 and "error" in run.output and "ConnectError" in run.output
    listed = runner.invoke(cli, ["systems", "list", "--database", database], env=env)
    assert "dead" in listed.output and "error" in listed.output
    shown = json.loads(runner.invoke(cli, ["systems", "show", "dead", "--database", database],
                                     env=env).output)
    assert shown["options"] == {"service": "kobe", "pageSize": 50} and shown["runs"] == 1
    refused = runner.invoke(cli, ["systems", "add", "meta", "rest-json",
                                  "http://169.254.169.254/", "--database", database], env=env)
    assert refused.exit_code == 1 and "HTTP 400" in refused.output
    deleted = runner.invoke(cli, ["systems", "delete", "dead", "--database", database], env=env)
    assert deleted.exit_code == 0
    gone = runner.invoke(cli, ["systems", "show", "dead", "--database", database], env=env)
    assert gone.exit_code == 1 and "404" in gone.output


async def test_the_routes_are_in_the_openapi_document(client: httpx.AsyncClient) -> None:
    from openapi_spec_validator import OpenAPIV31SpecValidator

    from cityos.assets.systems import ROUTES as SYSTEM_ROUTES
    from cityos.ingest.importers import ROUTES as IMPORT_ROUTES

    doc = (await client.get("/openapi.json")).json()
    OpenAPIV31SpecValidator(doc).validate()
    documented = {(path, method, op["operationId"]) for path, item in doc["paths"].items()
                  for method, op in item.items() if method != "parameters"}
    for route in [*SYSTEM_ROUTES, *IMPORT_ROUTES]:
        for method in route.methods - {"HEAD"}:
            assert (route.path, method.lower(), route.name) in documented
