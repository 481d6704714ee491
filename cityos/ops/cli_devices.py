"""``cityos devices …``: list, show, add and remove devices, and simulate many of them (AS-DV-1).

Every command speaks HTTP: the native API ``/assets/v1/devices`` of a running server (``--url``),
or of an in-process app on ``--database`` (no server needed).  ``simulate`` provisions a service
group and sends measures like real devices would, over HTTP or through the MQTT broker, with a
progress bar; it reports how many were acknowledged.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from cityos.ops.cli_common import Database, Url, request

devices_app = typer.Typer(help="Devices: provisioning, state and a load simulator.",
                          no_args_is_help=True)
BASE = "/assets/v1/devices"
Tenant = Annotated[str, typer.Option(help="Tenant (fiware-service) of the devices.")]


def _call(database: str | None, url: str | None, tenant: str, method: str, path: str,
          body: Any = None) -> Any:
    headers = {"NGSILD-Tenant": tenant, "fiware-service": tenant} if tenant else {}
    try:
        response = request(database, url, headers, 60.0, method, path, body)
    except httpx.HTTPError as exc:
        raise typer.BadParameter(f"cannot reach CityOS: {exc}", param_hint="--url") from None
    if response.status_code >= 400:
        detail = response.json().get("detail", response.text) if response.content else ""
        Console(stderr=True).print(f"[red]{response.status_code}[/] {detail}")
        raise typer.Exit(1)
    return response.json() if response.content else None


@devices_app.command("list")
def list_devices(state: Annotated[str | None, typer.Option(
                     help="online, offline or unknown")] = None,
                 database: Database = None, url: Url = None, tenant: Tenant = "") -> None:
    """List devices with their state and when they last sent data."""
    query = f"?state={state}&limit=1000" if state else "?limit=1000"
    rows = _call(database, url, tenant, "GET", BASE + query)
    table = Table("device_id", "entity", "transport", "state", "last seen")
    for row in rows:
        table.add_row(row["device_id"], row["entity_id"], row["transport"], row["state"],
                      row["last_seen"] or "-")
    Console().print(table)


@devices_app.command()
def show(device_id: str, database: Database = None, url: Url = None, tenant: Tenant = "") -> None:
    """Show one device as JSON."""
    typer.echo(json.dumps(_call(database, url, tenant, "GET", f"{BASE}/{device_id}"),
                          ensure_ascii=False, indent=2))


@devices_app.command()
def add(file: Annotated[Path | None, typer.Option(help="JSON file: one device or a list")] = None,
        device_id: Annotated[str | None, typer.Option("--id", help="Device id")] = None,
        entity_type: Annotated[str, typer.Option("--type", help="Entity type")] = "Thing",
        apikey: Annotated[str | None, typer.Option(help="API key the device uses")] = None,
        transport: Annotated[str, typer.Option(help="HTTP or MQTT")] = "HTTP",
        database: Database = None, url: Url = None, tenant: Tenant = "") -> None:
    """Provision devices from a JSON file (FIWARE device shape) or from options."""
    if file is not None:
        data = json.loads(file.read_text(encoding="utf-8"))
        bodies = data if isinstance(data, list) else [data]
    elif device_id:
        bodies = [{"device_id": device_id, "entity_type": entity_type, "transport": transport,
                   **({"apikey": apikey} if apikey else {})}]
    else:
        raise typer.BadParameter("give --file or --id", param_hint="--id")
    for body in bodies:
        created = _call(database, url, tenant, "POST", BASE, body)
        typer.echo(f"{created['device_id']} -> {created['entity_id']}")


@devices_app.command()
def remove(device_id: str, database: Database = None, url: Url = None,
           tenant: Tenant = "") -> None:
    """Deprovision a device (its entity and history stay)."""
    _call(database, url, tenant, "DELETE", f"{BASE}/{device_id}")
    typer.echo(f"removed {device_id}")


@devices_app.command()
def simulate(devices: Annotated[int, typer.Option(help="How many devices")] = 10,
             rate: Annotated[float, typer.Option(help="Measures per second, all devices")] = 100.0,
             seconds: Annotated[float, typer.Option(help="How long to send")] = 10.0,
             transport: Annotated[str, typer.Option(help="http or mqtt")] = "http",
             url: Annotated[str, typer.Option(help="CityOS base URL")] = "http://127.0.0.1:8080",
             mqtt: Annotated[str, typer.Option(help="MQTT broker")] = "mqtt://127.0.0.1:1883",
             tenant: Tenant = "simulation") -> None:
    """Simulate devices sending JSON measures (for demos and load)."""
    if transport not in ("http", "mqtt"):
        raise typer.BadParameter("http or mqtt", param_hint="--transport")
    from cityos.ingest.iot import run_simulation

    apikey = f"sim{uuid.uuid4().hex[:8]}"
    total = int(rate * seconds)
    with Progress() as progress:
        task = progress.add_task(f"{devices} devices over {transport}", total=total)
        started = time.perf_counter()
        outcome = asyncio.run(run_simulation(
            url=url, mqtt_url=mqtt, tenant=tenant, apikey=apikey, devices=devices, rate=rate,
            total=total, transport=transport,
            advance=lambda n: progress.update(task, advance=n)))
    elapsed = time.perf_counter() - started
    Console().print(f"sent {outcome['sent']}, acknowledged {outcome['acked']}, failed "
                    f"{outcome['failed']} in {elapsed:.1f} s (API key {apikey}, tenant {tenant})")


def register(app: typer.Typer) -> None:
    """Add ``cityos devices`` to the main command."""
    app.add_typer(devices_app, name="devices")
