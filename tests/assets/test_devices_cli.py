"""``cityos devices`` (AS-DV-1) on an in-process app over a SQLite file, and the simulator."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from typer.testing import CliRunner

from cityos.ingest.iot import SIMULATED_TYPE, run_simulation
from cityos.ops.cli import app

runner = CliRunner()


def test_add_list_show_remove(tmp_path: Path) -> None:
    db = ["--database", f"sqlite:///{tmp_path}/cli.db", "--tenant", "kobe"]
    result = runner.invoke(app, ["devices", "add", "--id", "lamp9", "--type", "Streetlight",
                                 "--apikey", "k9", *db])
    assert result.exit_code == 0, result.output
    assert "urn:ngsi-ld:Streetlight:lamp9" in result.output
    spec = tmp_path / "devices.json"
    spec.write_text(json.dumps([{"device_id": "gauge1", "entity_type": "WaterLevel",
                                 "expected_interval": 600}]), encoding="utf-8")
    assert runner.invoke(app, ["devices", "add", "--file", str(spec), *db]).exit_code == 0
    listing = runner.invoke(app, ["devices", "list", *db])
    assert "lamp9" in listing.output and "gauge1" in listing.output
    shown = runner.invoke(app, ["devices", "show", "gauge1", *db])
    assert json.loads(shown.output)["expected_interval"] == 600
    assert runner.invoke(app, ["devices", "list", "--state", "online", *db]).output.count(
        "lamp9") == 0
    assert runner.invoke(app, ["devices", "remove", "lamp9", *db]).exit_code == 0
    missing = runner.invoke(app, ["devices", "show", "lamp9", *db])
    assert missing.exit_code == 1


async def test_the_simulator_sends_every_measure(client: httpx.AsyncClient) -> None:
    outcome = await run_simulation(url="", mqtt_url="", tenant="sim", apikey="simkey",
                                   devices=5, rate=1e9, total=50, transport="http",
                                   client=client)
    assert (outcome["sent"], outcome["acked"], outcome["failed"]) == (50, 50, 0)
    r = await client.get("/ngsi-ld/v1/entities", params={"type": SIMULATED_TYPE, "limit": 10},
                         headers={"NGSILD-Tenant": "sim"})
    entities = r.json()
    assert len(entities) == 5
    for entity in entities:          # device simD sends the measures numbered D, D+5, ...
        assert entity["n"]["value"] % 5 == int(entity["id"].rsplit("sim", 1)[1])
