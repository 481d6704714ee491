"""``python -m bench.ngsiv2``: the NGSI v2 face against the NGSI-LD face on the same server.

One ``cityos serve`` per engine (SQLite; PostgreSQL when it answers on 127.0.0.1:5432).  For each
face the same three scenarios run with the closed-loop load generator (``bench.loadgen``):

* create: one new Room per request (``POST /v2/entities`` / ``POST /ngsi-ld/v1/entities``);
* update: one attribute of an existing Room (``PATCH .../attrs``);
* query: ``type=Room`` and ``q=temperature>…``, a page of 20, over every Room (both faces' ones).

Printed as requests/s, p50/p95 and the v2 / NGSI-LD ratio; ``--write`` appends a section to
``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx

from bench.loadgen import Req, Stats, measure_round
from bench.servers import engines, report, running_server

LD = "/ngsi-ld/v1"
RESULTS = Path(__file__).with_name("RESULTS.md")
ENV = {"CITYOS_HISTORY_ENABLED": "false"}


def _body(value: object) -> bytes:
    return json.dumps(value).encode()


def _seed(base: str, count: int) -> None:
    """``count`` Rooms written through each face (ids ``seed-ld-N`` / ``seed-v2-N``)."""
    with httpx.Client(base_url=base, trust_env=False, timeout=30) as client:
        for start in range(0, count, 100):
            numbers = range(start, min(start + 100, count))
            ld = [{"id": f"urn:ngsi-ld:Room:seed-ld-{n}", "type": "Room",
                   "temperature": {"type": "Property", "value": n % 100}} for n in numbers]
            assert client.post(f"{LD}/entityOperations/upsert", json=ld).status_code in (201, 204)
            v2 = [{"id": f"seed-v2-{n}", "type": "Room", "temperature": n % 100} for n in numbers]
            r = client.post("/v2/op/update?options=keyValues",
                            json={"actionType": "append", "entities": v2})
            assert r.status_code == 204, r.text


def scenarios(seeded: int, run_id: str) -> dict[str, dict[str, Callable[[int], Req]]]:
    """scenario -> face -> request maker."""
    return {
        "create": {
            "NGSI-LD": lambda i: Req("POST", f"{LD}/entities", _body({
                "id": f"urn:ngsi-ld:Room:{run_id}-ld-{i}", "type": "Room",
                "temperature": {"type": "Property", "value": i % 100}})),
            "NGSI v2": lambda i: Req("POST", "/v2/entities", _body({
                "id": f"{run_id}-v2-{i}", "type": "Room",
                "temperature": {"type": "Number", "value": i % 100}}))},
        "update": {
            "NGSI-LD": lambda i: Req("PATCH", f"{LD}/entities/urn:ngsi-ld:Room:seed-ld-"
                                              f"{i % seeded}/attrs",
                                     _body({"temperature": {"type": "Property", "value": i}})),
            "NGSI v2": lambda i: Req("PATCH", f"/v2/entities/seed-v2-{i % seeded}/attrs",
                                     _body({"temperature": {"type": "Number", "value": i}}))},
        "query": {
            "NGSI-LD": lambda i: Req("GET", f"{LD}/entities?type=Room&q=temperature%3E{i % 80}"
                                            "&limit=20"),
            "NGSI v2": lambda i: Req("GET", f"/v2/entities?type=Room&q=temperature%3E{i % 80}"
                                            "&limit=20")},
    }


def run_engine(database_url: str, workdir: Path, args: argparse.Namespace) -> dict[str, Stats]:
    """Every scenario on both faces of one server."""
    out: dict[str, Stats] = {}
    with running_server(database_url, workdir, env=ENV) as server:
        _seed(server.base, args.seed)
        for scenario, faces in scenarios(args.seed, f"r{server.pid}").items():
            # the faces take turns in short rounds, so a change in the machine's load (other
            # processes) weighs on both alike and the ratio stays meaningful
            for round_no in range(args.rounds):
                for face, make in faces.items():
                    measure_round(out, f"{scenario}/{face}", server.base,
                                  _shifted(make, round_no * 1_000_000),
                                  concurrency=args.concurrency,
                                  seconds=args.duration / args.rounds)
            for face in faces:
                stats = out[f"{scenario}/{face}"]
                print(f"  {scenario:7} {face:8} {stats.rate:8.0f} req/s  "
                      f"p50 {stats.percentile(50):6.2f} ms  p95 {stats.percentile(95):6.2f} ms",
                      flush=True)
    return out


def _shifted(make: Callable[[int], Req], offset: int) -> Callable[[int], Req]:
    """``make`` numbering from ``offset`` (every round creates new ids)."""
    return lambda i: make(i + offset)


def markdown(results: dict[str, dict[str, Stats]], args: argparse.Namespace) -> str:
    """The results as a RESULTS.md section."""
    lines = [f"\n## NGSI v2 face against NGSI-LD, {datetime.now(UTC):%Y-%m-%d}\n",
             f"`python -m bench.ngsiv2 --duration {args.duration} --rounds {args.rounds} "
             f"--concurrency {args.concurrency} --seed {args.seed}`: one `cityos serve` (one "
             "worker) per engine on this 2-core machine, history off, the faces taking turns in "
             f"{args.rounds} rounds per scenario ({args.duration:g} s per face in all); "
             f"{args.seed} Rooms seeded through each face (the query reads both).\n",
             "| engine | scenario | NGSI-LD req/s (p50 / p95) | NGSI v2 req/s (p50 / p95) "
             "| v2 / LD |", "|---|---|---|---|---|"]
    for engine, stats in results.items():
        for scenario in ("create", "update", "query"):
            ld, v2 = stats[f"{scenario}/NGSI-LD"], stats[f"{scenario}/NGSI v2"]
            lines.append(
                f"| {engine} | {scenario} | {ld.rate:.0f} ({ld.percentile(50):.1f} / "
                f"{ld.percentile(95):.1f} ms) | {v2.rate:.0f} ({v2.percentile(50):.1f} / "
                f"{v2.percentile(95):.1f} ms) | {v2.rate / ld.rate:.2f} |")
    lines.append("\nBoth faces write through the same store primitive and read through the same "
                 "query plan (ADR 0008); the v2 face adds its own parsing and rendering.\n")
    return "\n".join(lines)


def main() -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per scenario")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3, help="turns each face takes")
    parser.add_argument("--seed", type=int, default=2000, help="Rooms seeded per face")
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument("--write", action="store_true", help="append to bench/RESULTS.md")
    args = parser.parse_args()
    results: dict[str, dict[str, Stats]] = {}
    for name, make in engines(args.engines):
        with make() as (url, workdir):
            results[name] = run_engine(url, workdir, args)
    report(markdown(results, args), args.write, RESULTS)

if __name__ == "__main__":
    main()
