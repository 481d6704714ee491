"""``cityos import`` as an operator runs it: typer's CliRunner, and once as a real subprocess."""

from __future__ import annotations

import asyncio
import csv
import os
import re
import sys
from pathlib import Path

import httpx
from typer.testing import CliRunner

from cityos.app import create_app
from cityos.core.settings import Settings
from cityos.ops.cli import app as cli
from tests.ingest.test_import_support import SITES, evacuation_csv, serve

EVACUATION = "指定緊急避難場所一覧"
CONTEXT_LINK = ('</ngsi-ld/v1/jsonldContexts/jp-recommended-datasets>; '
                'rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"')


def _count(database: str, tenant: str = "") -> int:
    async def go() -> int:
        application = create_app(Settings.load(database_url=database, systems_poll_interval=0.0))
        async with application.router.lifespan_context(application):
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                response = await client.get(
                    "/ngsi-ld/v1/entities", params={"type": EVACUATION, "count": "true",
                                                     "limit": "0"},
                    headers={"Link": CONTEXT_LINK, "NGSILD-Tenant": tenant})
                return int(response.headers["NGSILD-Results-Count"])
    return asyncio.run(go())


def test_cli_imports_reports_rejections_and_reimports(tmp_path: Path) -> None:
    rows = [list(r) for r in SITES]
    rows[3][7] = "東経135度"
    source = tmp_path / "指定緊急避難場所一覧_神戸市.csv"
    source.write_bytes(evacuation_csv(rows=rows))
    database = f"sqlite:///{tmp_path / 'city.db'}"
    rejects = tmp_path / "rejects.csv"
    runner = CliRunner()
    result = runner.invoke(cli, ["import", str(source), "--database", database,
                                 "--rejects", str(rejects), "--quiet"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "4 imported (4 new, 0 updated)" in result.output
    assert "1 rejected" in result.output and "東経135度" in result.output
    with rejects.open(encoding="utf-8-sig") as f:
        assert list(csv.reader(f)) == [["row", "entity_id", "reason"],
                                       ["5", "", "bad coordinates: '34.6901', '東経135度' are not "
                                        "numbers"]]
    again = runner.invoke(cli, ["import", str(source), "--database", database, "--quiet"],
                          env={"COLUMNS": "200"})
    assert again.exit_code == 0 and "4 imported (0 new, 4 updated)" in again.output
    assert _count(database) == 4


def test_cli_exit_codes(tmp_path: Path) -> None:
    runner = CliRunner()
    database = f"sqlite:///{tmp_path / 'city.db'}"
    nothing = tmp_path / "evac.csv"
    nothing.write_bytes(evacuation_csv(rows=[["281000", "", *SITES[0][2:]]]))
    result = runner.invoke(cli, ["import", str(nothing), "--database", database, "--quiet"])
    assert result.exit_code == 1 and "missing id" in result.output
    unknown = tmp_path / "other.csv"
    unknown.write_text("a,b\n1,2\n")
    result = runner.invoke(cli, ["import", str(unknown), "--database", database])
    assert result.exit_code == 2
    both = runner.invoke(cli, ["import", str(nothing), "--database", database, "--url", "http://x"])
    assert both.exit_code == 2


def test_cli_mapping_file_for_any_csv(tmp_path: Path) -> None:
    source = tmp_path / "stops.tsv"
    source.write_bytes("停留所ID\t停留所名\t緯度\t経度\nS1\t三宮\t34.6946\t135.1956\n".encode("cp932"))
    mapping = tmp_path / "stops.yaml"
    mapping.write_text("type: BusStop\nid: 'urn:ngsi-ld:BusStop:{停留所ID}'\nlatitude: 緯度\n"
                       "longitude: 経度\nattributes:\n  停留所名: name\n", encoding="utf-8")
    database = f"sqlite:///{tmp_path / 'city.db'}"
    result = CliRunner().invoke(cli, ["import", str(source), "--mapping", str(mapping),
                                      "--database", database, "--quiet"])
    assert result.exit_code == 0, result.output
    assert "1 imported" in result.output and "BusStop" in result.output


async def test_cli_subprocess_posts_to_a_running_server(tmp_path: Path) -> None:
    many = [[*SITES[i % 5][:1], str(i + 1), *SITES[i % 5][2:]] for i in range(250)]
    source = tmp_path / "evacuation.csv"
    source.write_bytes(evacuation_csv(rows=many))
    settings = Settings.load(database_url="sqlite://", systems_poll_interval=0.0)
    async with serve(create_app(settings)) as base:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CITYOS_")}
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "cityos", "import", str(source), "--url", base,
            "--tenant", "kobe", "--batch-size", "100",
            env={**env, "COLUMNS": "250"}, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        out, err = await process.communicate()
        assert process.returncode == 0, err.decode()
        assert "250 imported (250 new, 0 updated)" in out.decode()
        assert "importing" in err.decode() and "250/250" in err.decode()     # the progress bar
        # the dataset @context was hosted on the server: its URL gives the short names back
        context = re.search(r"@context (\S+)", out.decode())
        assert context is not None and context[1].startswith(base)
        link = f'<{context[1]}>; rel="http://www.w3.org/ns/json-ld#context"'
        async with httpx.AsyncClient(base_url=base) as client:
            response = await client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:EvacuationSpace:281000-4",
                                        headers={"NGSILD-Tenant": "kobe", "Link": link})
        assert response.status_code == 200
        body = response.json()
        assert (body["type"], body["名称"]["value"]) == (EVACUATION, "神戸市役所")
