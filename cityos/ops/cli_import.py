"""``cityos import``: load a CSV or GeoJSON file into the City OS, locally or over HTTP.

Without ``--url`` the file goes through this process's broker into ``--database`` (the batch-upsert
action, as the HTTP API would); with ``--url`` it is POSTed in chunks to a running server's
``/ngsi-ld/v1/entityOperations/upsert``.  The exit code is 0 when at least one entity was written,
1 when nothing could be imported, 2 for bad arguments or an unreadable file.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from cityos.core.settings import Settings
from cityos.ingest.importers import (
    UNIMPORTABLE,
    BrokerSink,
    HttpSink,
    ImportReport,
    Mapping,
    Prepared,
    Sink,
    load_mapping,
    prepare_file,
    run_import,
)
from cityos.ops.cli_common import one_target

SHOWN_REJECTIONS = 20


def import_command(
    file: Annotated[Path, typer.Argument(help="The CSV or GeoJSON file.", exists=True,
                                         dir_okay=False, readable=True)],
    dataset: Annotated[str | None, typer.Option(
        help="Recommended dataset: number (10), name (指定緊急避難場所一覧) or slug "
             "(EvacuationSpace). Detected from the file name or header when omitted.")] = None,
    mapping: Annotated[Path | None, typer.Option(
        help="Mapping file (YAML or JSON) for any other CSV or GeoJSON; see docs/importing.md.",
        exists=True, dir_okay=False)] = None,
    format: Annotated[str | None, typer.Option(
        "--format", help="csv or geojson (default: from the file name / content).")] = None,
    encoding: Annotated[str | None, typer.Option(
        help="Force the encoding (utf-8, cp932/shift_jis, utf-16, euc-jp); detected otherwise.")] = None,
    delimiter: Annotated[str | None, typer.Option(
        help="Force the CSV delimiter (',', '\\t', ';', '|'); detected otherwise.")] = None,
    code: Annotated[str | None, typer.Option(
        help="Local government code for entity ids when the file has no code column.")] = None,
    entity_type: Annotated[str | None, typer.Option(
        "--type", help="GeoJSON without a mapping: the entity type to write.")] = None,
    id_property: Annotated[str | None, typer.Option(
        help="GeoJSON without a mapping: the property holding the id (default: feature id).")] = None,
    database: Annotated[str | None, typer.Option(
        help="Write into this database (sqlite:///path.db or postgresql://...).")] = None,
    url: Annotated[str | None, typer.Option(
        help="Write to a running server instead, e.g. http://127.0.0.1:8080.")] = None,
    tenant: Annotated[str, typer.Option(help="NGSI-LD tenant to write to.")] = "",
    batch_size: Annotated[int, typer.Option(min=1, help="Entities per upsert.")] = 500,
    rejects: Annotated[Path | None, typer.Option(
        help="Also write the rejected rows to this CSV file.", dir_okay=False)] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False,
) -> None:
    """Import a CSV (Japan's recommended datasets, or any CSV with --mapping) or GeoJSON file."""
    one_target(database, url)
    console = Console(stderr=True)
    try:
        rules: Mapping | None = load_mapping(mapping) if mapping else None
        prepared = prepare_file(file.read_bytes(), filename=file.name, format=format,
                                encoding=encoding, delimiter=delimiter, dataset=dataset,
                                mapping=rules, code=code, entity_type=entity_type,
                                id_property=id_property)
    except UNIMPORTABLE as exc:
        console.print(f"[red]cannot import {file.name}:[/] {exc}")
        raise typer.Exit(2) from None
    report = asyncio.run(_write(prepared, database, url, tenant, batch_size, console, quiet))
    print_report(report, Console())
    if rejects is not None:
        report.write_rejections(rejects)
        console.print(f"rejected rows written to {rejects}")
    if report.imported == 0:
        raise typer.Exit(1)


async def _write(prepared: Prepared, database: str | None, url: str | None, tenant: str,
                 batch_size: int, console: Console, quiet: bool) -> ImportReport:
    with Progress(TextColumn("[bold]importing[/]"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("entities"), TimeRemainingColumn(), console=console,
                  disable=quiet) as bar:
        task = bar.add_task("import", total=len(prepared.entities))

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        if url:
            import httpx

            from cityos.ops.cli_common import token_headers

            async with httpx.AsyncClient(timeout=60.0, headers=token_headers()) as client:
                return await _run(prepared, HttpSink(client, url, tenant), batch_size, progress)
        from cityos.app import create_app

        settings = Settings.load(database_url=database, systems_poll_interval=0.0)
        app = create_app(settings, local_cli=True)
        async with app.router.lifespan_context(app):
            sink = BrokerSink(app.state.broker, tenant)
            size = min(batch_size, settings.max_batch_size)
            return await _run(prepared, sink, size, progress)


async def _run(prepared: Prepared, sink: Sink, size: int, progress: Any) -> ImportReport:
    try:
        return await run_import(prepared, sink, size, progress)
    except (OSError, RuntimeError) as exc:
        # a server that cannot be reached: nothing was written by this run
        Console(stderr=True).print(f"[red]import failed:[/] {exc}")
        raise typer.Exit(1) from None


def print_report(report: ImportReport, console: Console) -> None:
    """The summary and the first rejected rows, as an operator reads them."""
    what = f"{report.dataset} " if report.dataset else ""
    read = f", {report.encoding}" if report.encoding else ""
    console.print(f"[bold]{report.source}[/] ({what}{report.format}{read}): {report.rows} rows, "
                  f"[green]{report.imported} imported[/] ({report.created} new, "
                  f"{report.updated} updated), "
                  f"[{'red' if report.rejected else 'green'}]{len(report.rejected)} rejected[/] "
                  f"in {report.seconds:.1f} s")
    context = f"; @context {report.context}" if report.context else ""
    console.print(f"entity type {report.entity_type}{context}")
    if not report.rejected:
        return
    table = Table(title="rejected rows")
    table.add_column("row", justify="right")
    table.add_column("entity id")
    table.add_column("reason")
    for rejection in report.rejected[:SHOWN_REJECTIONS]:
        table.add_row(str(rejection.row), rejection.entity_id or "", rejection.reason)
    console.print(table)
    if len(report.rejected) > SHOWN_REJECTIONS:
        console.print(f"... and {len(report.rejected) - SHOWN_REJECTIONS} more (use --rejects FILE)")


def register(app: typer.Typer) -> None:
    """Add ``cityos import`` to the ``cityos`` command."""
    app.command("import")(import_command)
