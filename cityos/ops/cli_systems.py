"""``cityos systems …``: register, list, show, delete and pull external systems.

Every command speaks the HTTP API ``/assets/v1/systems``: of a running server with ``--url``, or
of an in-process app on ``--database`` (no server needed; its scheduler stays off, so pulls there
happen only with ``cityos systems run``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from cityos.ops.cli_common import Database, Url, request

systems_app = typer.Typer(help="External systems CityOS pulls data from (Orion, NGSI-LD, JSON, "
                               "CSV, GeoJSON).", no_args_is_help=True)
BASE = "/assets/v1/systems"

Tenant = Annotated[str, typer.Option(help="NGSI-LD tenant the system belongs to.")]


def _call(database: str | None, url: str | None, tenant: str, method: str, path: str,
          body: Any = None) -> Any:
    headers = {"NGSILD-Tenant": tenant} if tenant else {}
    try:
        # in-process, the scheduler stays off: pulls happen only with `cityos systems run`
        response = request(database, url, headers, 120.0, method, path, body,
                           systems_poll_interval=0.0)
    except httpx.HTTPError as exc:
        Console(stderr=True).print(f"[red]cannot reach {url}:[/] {exc}")
        raise typer.Exit(1) from None
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        Console(stderr=True).print(f"[red]HTTP {response.status_code}:[/] {detail}")
        raise typer.Exit(1)
    return response.json() if response.content else None


def _options(pairs: list[str], mapping: Path | None) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise typer.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--option")
        options[key] = int(value) if key == "pageSize" and value.isdigit() else value
    if mapping is not None:
        from cityos.ingest.importers import MappingError, load_mapping

        try:
            load_mapping(mapping)
        except MappingError as exc:
            raise typer.BadParameter(str(exc), param_hint="--mapping") from None
        text = mapping.read_text(encoding="utf-8-sig")
        if mapping.suffix.lower() in (".yaml", ".yml"):
            import yaml

            options["mapping"] = yaml.safe_load(text)
        else:
            options["mapping"] = json.loads(text)
    return options


@systems_app.command("add")
def add(
    system_id: Annotated[str, typer.Argument(help="Id of the system (letters, digits, _ - .).")],
    kind: Annotated[str, typer.Argument(help="orion-v2, ngsi-ld, rest-json, csv-url or geojson-url")],
    system_url: Annotated[str, typer.Argument(help="The system's base URL (or the file's URL).")],
    name: Annotated[str | None, typer.Option(help="A readable name.")] = None,
    interval: Annotated[int, typer.Option(help="Seconds between pulls.")] = 3600,
    option: Annotated[list[str] | None, typer.Option(
        help="KEY=VALUE option of the kind, repeatable (e.g. service=kobe, type=WeatherObserved, "
             "selector=$.items[*], dataset=10).")] = None,
    mapping: Annotated[Path | None, typer.Option(help="Mapping file (YAML/JSON) for rest-json / "
                                                     "other CSV or GeoJSON.", exists=True)] = None,
    disabled: Annotated[bool, typer.Option("--disabled", help="Register without pulling.")] = False,
    database: Database = None, url: Url = None, tenant: Tenant = "",
) -> None:
    """Register an external system; it is pulled at once and then every INTERVAL seconds."""
    body = {"id": system_id, "name": name or system_id, "kind": kind, "url": system_url,
            "interval": interval, "enabled": not disabled, "options": _options(option or [], mapping)}
    system = _call(database, url, tenant, "POST", BASE, body)
    Console().print(f"registered [bold]{system['id']}[/] ({system['kind']} {system['url']}), "
                    f"every {system['interval']} s")


@systems_app.command("list")
def list_(database: Database = None, url: Url = None, tenant: Tenant = "") -> None:
    """Every registered system with its last run."""
    systems = _call(database, url, tenant, "GET", BASE)
    table = Table(title="external systems")
    for column in ("id", "kind", "url", "every", "status", "last run", "counts", "last error"):
        table.add_column(column, overflow="fold")
    for s in systems:
        counts = s.get("counts") or {}
        table.add_row(s["id"], s["kind"], s["url"], f"{s['interval']} s", s.get("status") or "",
                      s.get("lastRunAt") or "never",
                      " ".join(f"{k}={v}" for k, v in counts.items()), s.get("lastError") or "")
    Console().print(table)


@systems_app.command("show")
def show(system_id: str, database: Database = None, url: Url = None, tenant: Tenant = "") -> None:
    """One system as JSON."""
    typer.echo(json.dumps(_call(database, url, tenant, "GET", f"{BASE}/{system_id}"),
                          ensure_ascii=False, indent=2))


@systems_app.command("delete")
def delete(system_id: str, database: Database = None, url: Url = None, tenant: Tenant = "") -> None:
    """Forget a system (the entities it wrote stay)."""
    _call(database, url, tenant, "DELETE", f"{BASE}/{system_id}")
    Console().print(f"deleted {system_id}")


@systems_app.command("run")
def run(system_id: str, database: Database = None, url: Url = None, tenant: Tenant = "") -> None:
    """Pull a system now and print the outcome (exit code 1 when the pull failed)."""
    system = _call(database, url, tenant, "POST", f"{BASE}/{system_id}/run")
    counts = system.get("counts") or {}
    Console().print(f"{system_id}: [bold]{system['status']}[/] "
                    + " ".join(f"{k}={v}" for k, v in counts.items())
                    + (f"\n{system['lastError']}" if system.get("lastError") else ""))
    if system["status"] == "error":
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add ``cityos systems`` to the ``cityos`` command."""
    app.add_typer(systems_app, name="systems")
