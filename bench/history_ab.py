"""``python -m bench.history_ab``: what history costs an update, this tree against another one.

On this shared two-core machine the update rate of one server moves by ±20 % from one run to the
next, more than most changes to the history path are worth.  This runs three servers side by
side on SQLite: history off and history on with this tree's code, and history on with the code
of another tree (``--other``, e.g. ``git archive <rev> cityos | tar -x -C /tmp/old``; its
server gets ``PYTHONPATH`` set to it).  Each round measures all three seconds apart, in
alternating order, so each round's losses compare like with like; the medians over the rounds
are reported.  The servers keep their history between rounds, so late rounds run on a larger
history than early ones.

    git archive 62549e5 cityos | tar -x -C /tmp/old
    python -m bench.history_ab --other /tmp/old --rounds 10 --duration 6
    python -m bench.history_ab --other /tmp/old --engine postgresql

On PostgreSQL each server gets a database of its own and the CPU counted includes that
database's backends.
"""

from __future__ import annotations

import argparse
import json
import statistics
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx

from bench import LOOPBACK
from bench.events import ServerCpu, console, load_sensors, updates
from bench.servers import postgres_database, running_server, sqlite_database


def measure(args: argparse.Namespace) -> list[dict[str, tuple[float, float]]]:
    """Per round: variant -> (updates per second, server CPU µs per update)."""
    variants = {"off": {"CITYOS_HISTORY_ENABLED": "false"},
                "on (other)": {"CITYOS_HISTORY_ENABLED": "true", "PYTHONPATH": str(args.other)},
                "on (this)": {"CITYOS_HISTORY_ENABLED": "true"}}
    rounds: list[dict[str, tuple[float, float]]] = []
    database = sqlite_database if args.engine == "sqlite" else postgres_database
    with ExitStack() as stack:
        servers = {}
        for name, env in variants.items():
            url, workdir = stack.enter_context(database())
            server = stack.enter_context(running_server(
                url, workdir, env={**env, "CITYOS_NOTIFICATION_ALLOW": LOOPBACK}))
            client = stack.enter_context(httpx.Client(base_url=server.base, timeout=120))
            servers[name] = (server, load_sensors(client, args.entities))
        for n in range(args.rounds):
            order = list(servers) if n % 2 == 0 else list(reversed(servers))
            result: dict[str, tuple[float, float]] = {}
            for name in order:
                server, ids = servers[name]
                cpu = ServerCpu(server, args.engine).start()
                stats, sent = updates(server.base, ids, args)
                result[name] = (stats.rate, cpu.seconds() / sent * 1e6)
            rounds.append(result)
            console.print(f"round {n + 1}: " + ", ".join(
                f"{k} {v[0]:,.0f}/s {v[1]:.0f} µs" for k, v in result.items()))
    return rounds


def summary(rounds: list[dict[str, tuple[float, float]]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in ("on (other)", "on (this)"):
        out[name] = {
            "median_loss": statistics.median(1 - r[name][0] / r["off"][0] for r in rounds),
            "median_extra_cpu_us": statistics.median(r[name][1] - r["off"][1] for r in rounds),
            "rounds_faster_than_other": sum(r["on (this)"][0] > r["on (other)"][0]
                                            for r in rounds)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.history_ab", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--other", type=Path, required=True,
                        help="a directory holding the other tree's cityos package")
    parser.add_argument("--engine", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--duration", type=float, default=6.0, help="seconds per measurement")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--entities", type=int, default=1000, help="sensors updated in turn")
    parser.add_argument("--json", type=Path, help="write the rounds and the summary here")
    args = parser.parse_args()
    if not (args.other / "cityos" / "__init__.py").exists():
        parser.error(f"{args.other} holds no cityos package")
    rounds = measure(args)
    result = summary(rounds)
    for name, s in result.items():
        console.print(f"[bold]{name}[/]: loss {s['median_loss']:.1%} (median), "
                      f"{s['median_extra_cpu_us']:.0f} µs more CPU per update than history off")
    console.print(f"this tree faster than the other in {result['on (this)']['rounds_faster_than_other']}"
                  f" of {len(rounds)} rounds")
    if args.json:
        args.json.write_text(json.dumps({"rounds": rounds, "summary": result}, indent=1))


if __name__ == "__main__":
    main()
