"""``python -m bench``: benchmark a real ``cityos serve`` on SQLite and/or PostgreSQL.

Examples::

    python -m bench                                   # both engines, 100k entities, 20 s each
    python -m bench --engine sqlite --scale 1000000 --only get
    python -m bench --only create,update --duration 10 --json /tmp/bench.json
"""

from __future__ import annotations

import argparse
import json
import secrets
import signal
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

from bench.report import Result, environment, markdown_table
from bench.runner import LoadFailed, Options, new_progress, run_engine
from bench.scenarios import BY_NAME, SCENARIOS
from bench.servers import (
    ServerFailed,
    postgres_available,
    postgres_database,
    postgres_setting,
    running_server,
    sqlite_database,
)

PG_SETTINGS = ("autovacuum", "shared_buffers", "synchronous_commit", "fsync", "max_connections")


def parse_args(argv: list[str]) -> argparse.Namespace:
    names = ", ".join(s.name for s in SCENARIOS)
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark CityOS: each scenario runs against a real `cityos serve` "
                    "subprocess (one uvicorn worker) on 127.0.0.1; this process is the load "
                    f"generator. Scenarios, in the order they run: {names}.")
    parser.add_argument("--engine", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--scale", type=int, default=100_000,
                        help="entities stored for get-by-id (default 100000; up to 1000000)")
    parser.add_argument("--query-scale", type=int, default=100_000,
                        help="ParkingSpots (with a location) for the query, geo and update "
                             "scenarios (default 100000)")
    parser.add_argument("--duration", type=float, default=20.0,
                        help="measured seconds per scenario (default 20)")
    parser.add_argument("--warmup", type=float, default=2.0,
                        help="unmeasured seconds before each scenario (default 2)")
    parser.add_argument("--max-requests", type=int, default=2_000_000,
                        help="hard cap on requests per scenario (default 2000000)")
    parser.add_argument("--concurrency", type=int, default=None,
                        help="override every scenario's number of concurrent connections")
    parser.add_argument("--only", default=None,
                        help=f"comma-separated scenarios to run (of: {names})")
    parser.add_argument("--json", type=Path, default=None, help="write every result here")
    parser.add_argument("--profile", type=Path, default=None, metavar="DIR",
                        help="record each scenario with py-spy (raw collapsed stacks) into DIR")
    parser.add_argument("--quiet-wait", type=float, default=120.0,
                        help="before each scenario, wait up to this many seconds until other "
                             "processes use < 25%% of a core (default 120; 0 = do not wait)")
    parser.add_argument("--retries", type=int, default=1,
                        help="measure a scenario again (at most this many times) when other "
                             "processes used >= 25%% of a core during it; the least disturbed "
                             "run is kept (default 1)")
    parser.add_argument("--no-analyze", action="store_true",
                        help="PostgreSQL: do not ANALYZE after loading (by default the bench "
                             "does what autovacuum would do shortly after a bulk load)")
    parser.add_argument("--seed", type=int, default=20251125)
    args = parser.parse_args(argv)
    if args.only:
        wanted = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in wanted if n not in BY_NAME]
        if unknown:
            parser.error(f"unknown scenario(s) {', '.join(unknown)}; choose from {names}")
        args.scenarios = [s for s in SCENARIOS if s.name in wanted]
    else:
        args.scenarios = list(SCENARIOS)
    if not 1 <= args.scale <= 5_000_000 or not 1 <= args.query_scale <= 5_000_000:
        parser.error("--scale and --query-scale must be between 1 and 5000000")
    if not 0 < args.duration <= 3600:
        parser.error("--duration must be between 0 and 3600 seconds")
    return args


def _terminate(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds through the context managers that clean up


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    console = Console(width=None if sys.stdout.isatty() else 180)
    env = environment(argv)
    console.print(f"[bold]CityOS benchmark[/] {env['date']}, commit {env['commit'][:12]}"
                  f"{' (+ local changes)' if env['worktree_modified'] else ''}, "
                  f"{env['cores']} cores {env['cpu']}")
    options = Options(scale=args.scale, query_scale=args.query_scale, duration=args.duration,
                      warmup=args.warmup, max_requests=args.max_requests,
                      concurrency=args.concurrency, seed=args.seed, profile_dir=args.profile,
                      quiet_wait=args.quiet_wait, analyze=not args.no_analyze, retries=max(0, args.retries))
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    engines = ["sqlite", "postgresql"] if args.engine == "both" else [args.engine]
    report: dict[str, Any] = {"environment": env, "engines": {}}
    all_results: dict[str, list[Result]] = {}
    run_id = secrets.token_hex(3)
    failed = False
    for engine in engines:
        entry: dict[str, Any] = report["engines"].setdefault(engine, {})
        if engine == "postgresql":
            reason = postgres_available()
            if reason:
                console.print(f"[yellow]PostgreSQL skipped:[/] {reason}")
                entry["skipped"] = reason
                failed = True
                continue
            entry["settings"] = {name: postgres_setting(name) for name in PG_SETTINGS}
            env["postgresql"] = postgres_setting("server_version")
        database = sqlite_database() if engine == "sqlite" else postgres_database()
        try:
            with database as (url, workdir), running_server(url, workdir) as server, \
                    new_progress(console) as progress:
                results, loads = run_engine(engine, server, args.scenarios, options, progress,
                                            run_id)
        except (ServerFailed, LoadFailed) as exc:
            console.print(f"[red]{engine}: {exc}[/]")
            entry["failed"] = str(exc)
            failed = True
            continue
        all_results[engine] = results
        entry["results"] = [r.as_dict() for r in results]
        entry["loading"] = loads
        entry["markdown"] = markdown_table(results)
        failed = failed or any(r.verdict == "MISS" and r.stats.errors for r in results)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False))
        console.print(f"results written to {args.json}")
    summary = [f"{e}: {sum(r.verdict == 'PASS' for r in rs)}/"
               f"{sum(r.verdict in ('PASS', 'MISS') for r in rs)} targets met"
               for e, rs in all_results.items()]
    console.print("; ".join(summary) or "nothing ran")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
