"""Importer benchmark (``python -m bench.importer``): rows/s for a large Shift_JIS CSV.

Generates ``--rows`` (100,000) evacuation-site rows (指定緊急避難場所一覧, every column of the
recommended dataset, random points over Kobe) encoded in cp932, then per engine:

1. **local**: what ``cityos import FILE --database URL`` does, in this process: decode + map
   (``prepare``), then batch upserts of ``--chunk`` (1,000) entities through the broker's action.
2. **re-import**: the same file again (every entity replaced by itself).
3. **http**: what ``cityos import FILE --url URL`` does against a fresh ``cityos serve``
   subprocess (one worker), POSTing ``--chunk`` entities per ``/entityOperations/upsert``.

Rows/s are rows written over wall time, including decoding.  Both engines are durable (SQLite
``synchronous=FULL``, PostgreSQL defaults).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import random
import time
from pathlib import Path
from typing import Any

import httpx

from bench.servers import postgres_available, postgres_database, running_server, sqlite_database
from cityos.app import create_app
from cityos.core.settings import Settings
from cityos.ingest.importers import BrokerSink, HttpSink, prepare_csv, run_import

HEADER = ["市区町村コード", "NO", "名称", "名称_カナ", "住所", "方書", "緯度", "経度", "標高",
          "電話番号", "内線番号", "都道府県名", "市区町村名", "災害種別_洪水",
          "災害種別_崖崩れ、土石流及び地滑り", "災害種別_高潮", "災害種別_地震", "災害種別_津波",
          "災害種別_大規模な火事", "災害種別_内水氾濫", "災害種別_火山現象", "指定避難所との重複",
          "想定収容人数", "対象となる町会・自治会", "URL", "備考"]
WARDS = ["東灘区", "灘区", "中央区", "兵庫区", "北区", "長田区", "須磨区", "垂水区", "西区"]


def generate(rows: int, seed: int = 7) -> bytes:
    """``rows`` evacuation sites as a cp932 CSV."""
    rnd = random.Random(seed)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(HEADER)
    for n in range(1, rows + 1):
        ward = rnd.choice(WARDS)
        flags = [rnd.choice(["1", ""]) for _ in range(9)]
        writer.writerow(["281000", str(n), f"{ward}避難場所{n}号", f"ヒナンバショ{n}ゴウ",
                         f"兵庫県神戸市{ward}{rnd.randint(1, 9)}丁目{rnd.randint(1, 30)}", "",
                         f"{rnd.uniform(34.63, 34.78):.6f}", f"{rnd.uniform(135.00, 135.28):.6f}",
                         f"{rnd.uniform(0, 400):.1f}", "078-331-8181", "", "兵庫県", "神戸市",
                         *flags, str(rnd.randint(50, 5000)), f"{ward}自治会①", "", ""])
    return out.getvalue().encode("cp932")


async def _local(data: bytes, database_url: str, chunk: int) -> dict[str, Any]:
    settings = Settings.load(database_url=database_url, systems_poll_interval=0.0,
                             max_batch_size=max(chunk, 1000), context_fetch_enabled=False)
    app = create_app(settings)
    out: dict[str, Any] = {}
    async with app.router.lifespan_context(app):
        for label in ("local", "re-import"):
            started = time.perf_counter()
            prepared = prepare_csv(data, filename="evacuation.csv")
            parsed = time.perf_counter() - started
            report = await run_import(prepared, BrokerSink(app.state.broker), chunk)
            seconds = time.perf_counter() - started
            out[label] = {"rows": report.imported, "created": report.created,
                          "prepare_s": round(parsed, 2), "seconds": round(seconds, 2),
                          "rows_per_s": round(report.imported / seconds)}
    return out


async def _http(data: bytes, base: str, chunk: int) -> dict[str, Any]:
    started = time.perf_counter()
    prepared = prepare_csv(data, filename="evacuation.csv")
    async with httpx.AsyncClient(timeout=120.0, trust_env=False) as client:
        report = await run_import(prepared, HttpSink(client, base), chunk)
    seconds = time.perf_counter() - started
    return {"rows": report.imported, "rejected": len(report.rejected),
            "seconds": round(seconds, 2), "rows_per_s": round(report.imported / seconds)}


def run_engine(engine: str, data: bytes, chunk: int) -> dict[str, Any]:
    """Every mode on one engine, each on a fresh database."""
    make = sqlite_database if engine == "sqlite" else postgres_database
    with make() as (url, _workdir):
        result = asyncio.run(_local(data, url, chunk))
    with make() as (url, workdir), running_server(url, workdir) as server:
        result["http"] = asyncio.run(_http(data, server.base, chunk))
    return result


def main() -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--chunk", type=int, default=1000)
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument("--json", type=Path, help="Also write the results here.")
    args = parser.parse_args()
    data = generate(args.rows)
    print(f"{args.rows} rows, {len(data) / 2**20:.1f} MiB cp932")
    results: dict[str, Any] = {"rows": args.rows, "bytes": len(data), "chunk": args.chunk}
    for engine in args.engines.split(","):
        if engine == "postgresql" and (why := postgres_available()):
            print(f"postgresql skipped: {why}")
            continue
        results[engine] = run_engine(engine, data, args.chunk)
        for mode, numbers in results[engine].items():
            print(f"{engine:10} {mode:9} {numbers['rows']:>7} rows in {numbers['seconds']:>6} s "
                  f"= {numbers['rows_per_s']:>6} rows/s")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
