"""The ``cityos`` command: run the City OS and administer it."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from cityos import __version__
from cityos.core.settings import Settings

app = typer.Typer(
    name="cityos",
    help="CityOS — an open-source City OS (都市OS). `cityos serve --demo` starts it with a demo "
         "city; every setting can also be given as a CITYOS_* environment variable "
         "(see `cityos settings`).",
    no_args_is_help=True,
    add_completion=False,
)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on. [default: 127.0.0.1]")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on. [default: 8080]")] = None,
    database: Annotated[str | None, typer.Option(
        help="sqlite:///path.db (default sqlite:///cityos-data/cityos.db), sqlite:// for memory, "
             "or postgresql://user@host:port/db")] = None,
    demo: Annotated[bool, typer.Option("--demo", help="Load the demo city (Kobe) at start-up.")] = False,
    workers: Annotated[int, typer.Option(help="Worker processes (PostgreSQL only; SQLite needs 1).")] = 1,
) -> None:
    """Serve the City OS; the NGSI-LD API is at http://HOST:PORT/ngsi-ld/v1/ and docs at /docs."""
    import uvicorn

    from cityos.core.storage import engine_of

    settings = Settings.load(host=host, port=port, database_url=database, demo=demo or None)
    try:
        engine = engine_of(settings.database_url)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--database") from None
    if workers > 1 and engine == "sqlite":
        raise typer.BadParameter("SQLite has one writer: use --workers 1 or PostgreSQL",
                                 param_hint="--workers")
    if settings.insecure_no_auth and not settings.insecure_allow_remote and \
            settings.host not in ("127.0.0.1", "::1", "localhost"):
        raise typer.BadParameter(
            "CITYOS_INSECURE_NO_AUTH turns access control off: it is refused on a non-loopback "
            "address (set CITYOS_INSECURE_ALLOW_REMOTE=1 only on an isolated test network)",
            param_hint="--host")
    console = Console(stderr=True)
    console.print(f"[bold]CityOS {__version__}[/] on {engine} — "
                  f"NGSI-LD API http://{settings.host}:{settings.port}/ngsi-ld/v1/ , "
                  f"console http://{settings.host}:{settings.port}/docs")
    from cityos.app import create_app

    if workers > 1:
        import os

        os.environ["CITYOS_DATABASE_URL"] = settings.database_url
        os.environ["CITYOS_DEMO"] = "true" if settings.demo else "false"
        uvicorn.run("cityos.app:create_app", factory=True, host=settings.host, port=settings.port,
                    workers=workers, log_level=settings.log_level, access_log=False)
        return
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port,
                log_level=settings.log_level, access_log=False)


@app.command("settings")
def show_settings() -> None:
    """List every setting with its environment variable, default and meaning."""
    table = Table(title="CityOS settings")
    # names and defaults are what people copy: never cut them, let the meaning wrap instead
    table.add_column("environment variable", no_wrap=True)
    table.add_column("default", no_wrap=True)
    table.add_column("meaning")
    for env, default, doc in Settings.describe():
        table.add_row(env, default, doc)
    Console().print(table)


@app.command()
def version() -> None:
    """Print the CityOS version."""
    typer.echo(__version__)


def _register_subcommands() -> None:
    from cityos.ops.cli_auth import register as register_auth
    from cityos.ops.cli_devices import register as register_devices
    from cityos.ops.cli_import import register as register_import
    from cityos.ops.cli_systems import register as register_systems

    register_import(app)
    register_systems(app)
    register_devices(app)
    register_auth(app)


_register_subcommands()


def main() -> None:
    """Entry point of the ``cityos`` console script."""
    app()
