"""``python -m bench.auth``: the cost of access control, auth on against auth off, in one run.

Two ``cityos serve`` per engine on the same seeded data: one with ``CITYOS_INSECURE_NO_AUTH=1``
(no middleware, no guard) and one secure, called with an operator's client-credentials token
(signature check from the cache, revocation lookups, policy view, guarded store).  The servers
take turns in short rounds per scenario, so the machine's load weighs on both alike:

* get: one Room by id;
* query: ``type=Room&q=temperature>…``, a page of 20;
* update: one attribute of an existing Room (``PATCH .../attrs``).

Target (ADR 0012 §15): auth on ≤ 5 % below auth off.  ``--write`` appends to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import httpx

from bench.loadgen import Req, Stats, measure_round
from bench.servers import engines, report, running_server

LD = "/ngsi-ld/v1"
RESULTS = Path(__file__).with_name("RESULTS.md")
ENV = {"CITYOS_HISTORY_ENABLED": "false", "CITYOS_AUTH_ACCESS_TTL": "3600"}
MODES = ("auth off", "auth on")


async def _client_for_bench(database_url: str) -> str:
    """An operator application (client credentials) in the secure server's directory."""
    from cityos.auth.directory import opened_directory

    async with opened_directory(database_url) as directory:
        _, secret = await directory.create_client(
            "bench", client_id="bench", grant_types=("client_credentials",),
            scopes=("entities:read", "entities:write"), roles=("operator",))
    assert secret is not None
    return secret


def _token(base: str, secret: str) -> str:
    r = httpx.post(f"{base}/auth/token", auth=("bench", secret), trust_env=False, data={
        "grant_type": "client_credentials", "scope": "entities:read entities:write"})
    r.raise_for_status()
    return str(r.json()["access_token"])


def _seed(base: str, count: int, headers: dict[str, str]) -> None:
    with httpx.Client(base_url=base, trust_env=False, timeout=30, headers=headers) as client:
        for start in range(0, count, 100):
            rooms = [{"id": f"urn:ngsi-ld:Room:{n}", "type": "Room",
                      "temperature": {"type": "Property", "value": n % 100}}
                     for n in range(start, min(start + 100, count))]
            r = client.post(f"{LD}/entityOperations/upsert", json=rooms)
            assert r.status_code in (201, 204), r.text


def scenarios(seeded: int, headers: dict[str, str]) -> dict[str, Callable[[int], Req]]:
    json_headers = {**headers, "Content-Type": "application/json"}
    return {
        "get": lambda i: Req("GET", f"{LD}/entities/urn:ngsi-ld:Room:{i % seeded}",
                             headers=headers),
        "query": lambda i: Req("GET", f"{LD}/entities?type=Room&q=temperature%3E{i % 80}&limit=20",
                               headers=headers),
        "update": lambda i: Req("PATCH", f"{LD}/entities/urn:ngsi-ld:Room:{i % seeded}/attrs",
                                json.dumps({"temperature": {"type": "Property", "value": i}})
                                .encode(), headers=json_headers),
    }


def run_engine(urls: dict[str, tuple[str, Path]], args: argparse.Namespace) -> dict[str, Stats]:
    out: dict[str, Stats] = {}
    secret = asyncio.run(_client_for_bench(urls["auth on"][0]))
    with ExitStack() as stack:
        bases: dict[str, str] = {}
        makers: dict[str, dict[str, Callable[[int], Req]]] = {}
        for mode in MODES:
            url, workdir = urls[mode]
            env = {**ENV, "CITYOS_INSECURE_NO_AUTH": "1" if mode == "auth off" else "0"}
            server = stack.enter_context(running_server(url, workdir, env=env))
            headers = {} if mode == "auth off" else {
                "Authorization": f"Bearer {_token(server.base, secret)}"}
            _seed(server.base, args.seed, headers)
            bases[mode], makers[mode] = server.base, scenarios(args.seed, headers)
        for scenario in ("get", "query", "update"):
            for _round in range(args.rounds):
                for mode in MODES:
                    measure_round(out, f"{scenario}/{mode}", bases[mode], makers[mode][scenario],
                                  concurrency=args.concurrency,
                                  seconds=args.duration / args.rounds)
            off, on = out[f"{scenario}/auth off"], out[f"{scenario}/auth on"]
            print(f"  {scenario:7} off {off.rate:7.0f} req/s  on {on.rate:7.0f} req/s  "
                  f"on/off {on.rate / off.rate:.3f}", flush=True)
    return out


def markdown(results: dict[str, dict[str, Stats]], args: argparse.Namespace) -> str:
    lines = [f"\n## Access control on against off, {datetime.now(UTC):%Y-%m-%d}\n",
             f"`python -m bench.auth --duration {args.duration} --rounds {args.rounds} "
             f"--concurrency {args.concurrency} --seed {args.seed}`: per engine two `cityos serve` "
             "(one worker each) on this 2-core machine, history off, one with "
             "`CITYOS_INSECURE_NO_AUTH=1` and one secure called with an operator's "
             "client-credentials token, taking turns in rounds. Target: on ≥ 0.95 × off.\n",
             "| engine | scenario | auth off req/s (p50 / p95) | auth on req/s (p50 / p95) "
             "| on / off |", "|---|---|---|---|---|"]
    for engine, stats in results.items():
        for scenario in ("get", "query", "update"):
            off, on = stats[f"{scenario}/auth off"], stats[f"{scenario}/auth on"]
            lines.append(f"| {engine} | {scenario} | {_cell(off)} | {_cell(on)} | "
                         f"{on.rate / off.rate:.2f} |")
    return "\n".join(lines) + "\n"


def _cell(s: Stats) -> str:
    return f"{s.rate:.0f} ({s.percentile(50):.1f} / {s.percentile(95):.1f} ms)"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--duration", type=float, default=6.0, help="seconds per scenario and mode")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=2000, help="Rooms seeded per server")
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument("--write", action="store_true", help="append to bench/RESULTS.md")
    args = parser.parse_args()
    results: dict[str, dict[str, Stats]] = {}
    for name, make in engines(args.engines):
        with make() as off, make() as on:
            results[name] = run_engine({"auth off": off, "auth on": on}, args)
    report(markdown(results, args), args.write, RESULTS)

if __name__ == "__main__":
    main()
