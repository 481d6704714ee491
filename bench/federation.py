"""``python -m bench.federation``: what a federated query costs over a local one.

Two real ``cityos serve`` processes (city A and city B, SQLite, one worker each) on 127.0.0.1.
Each holds ``--entities`` ParkingSpots.  Measured from one client with keep-alive, sequentially:

* B alone (no registration): query by type, retrieve by id — the local baseline;
* A alone: the same query — what the remote part costs by itself;
* B after registering A: the same query (answered by B and A merged), retrieve of an entity that
  lives in A, and the query with ``local=true`` (a registration exists but is not used).

Results (p50 / p95 latency, requests per second) are printed and, with ``--write``, appended as
a section to ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx

from bench.servers import running_server, sqlite_database

API = "/ngsi-ld/v1"
RESULTS = Path(__file__).with_name("RESULTS.md")
HEADING = "## Federation (distributed queries)"
ENV = {"CITYOS_NOTIFICATION_ALLOW": "127.0.0.1", "CITYOS_HISTORY_ENABLED": "false"}


def _load(client: httpx.Client, city: str, count: int) -> None:
    for start in range(0, count, 100):
        batch = [{"id": f"urn:ngsi-ld:ParkingSpot:{city}-{n}", "type": "ParkingSpot",
                  "name": {"type": "Property", "value": f"{city} 駐車場 {n}"},
                  "availableSpotNumber": {"type": "Property", "value": n % 50,
                                          "observedAt": "2026-11-26T09:00:00+09:00"},
                  "location": {"type": "GeoProperty", "value": {
                      "type": "Point", "coordinates": [135.19 + n / 1e5, 34.69]}}}
                 for n in range(start, min(start + 100, count))]
        response = client.post(f"{API}/entityOperations/upsert", json=batch)
        assert response.status_code in (201, 204), response.text


def _measure(client: httpx.Client, path: str, requests: int,
             check: Callable[[httpx.Response], bool]) -> dict[str, float]:
    for _ in range(min(50, requests)):          # warm-up: connections, caches
        client.get(path)
    times: list[float] = []
    began = time.perf_counter()
    for _ in range(requests):
        t0 = time.perf_counter()
        response = client.get(path)
        times.append(time.perf_counter() - t0)
        if not check(response):
            raise RuntimeError(f"unexpected answer to {path}: {response.status_code} "
                               f"{response.text[:200]}")
    elapsed = time.perf_counter() - began
    times.sort()
    return {"p50": statistics.median(times) * 1000,
            "p95": times[int(len(times) * 0.95) - 1] * 1000,
            "rps": requests / elapsed}


def run(entities: int, requests: int, limit: int) -> list[tuple[str, dict[str, float]]]:
    """Start both cities, load them, measure every scenario."""
    query = f"{API}/entities?type=ParkingSpot&limit={limit}"
    rows: list[tuple[str, dict[str, float]]] = []
    with sqlite_database() as (a_db, a_dir), sqlite_database() as (b_db, b_dir), \
            running_server(a_db, a_dir, env={**ENV, "CITYOS_FEDERATION_ID": "a"}) as a_srv, \
            running_server(b_db, b_dir, env={**ENV, "CITYOS_FEDERATION_ID": "b"}) as b_srv, \
            httpx.Client(base_url=a_srv.base, trust_env=False, timeout=10) as a, \
            httpx.Client(base_url=b_srv.base, trust_env=False, timeout=10) as b:
        _load(a, "a", entities)
        _load(b, "b", entities)

        def page(n: int) -> Callable[[httpx.Response], bool]:
            return lambda r: r.status_code == 200 and len(r.json()) == n

        def found(r: httpx.Response) -> bool:
            return r.status_code == 200

        rows.append(("B local query (no registration)", _measure(b, query, requests, page(limit))))
        rows.append(("B local retrieve by id (no registration)",
                     _measure(b, f"{API}/entities/urn:ngsi-ld:ParkingSpot:b-7", requests, found)))
        rows.append(("A local query (the remote part alone)",
                     _measure(a, query, requests, page(limit))))
        registration = {"id": "urn:ngsi-ld:ContextSourceRegistration:a",
                        "type": "ContextSourceRegistration",
                        "information": [{"entities": [{"type": "ParkingSpot"}]}],
                        "endpoint": a_srv.base}
        assert b.post(f"{API}/csourceRegistrations", json=registration).status_code == 201
        rows.append(("B federated query (B + A merged)",
                     _measure(b, query, requests, page(limit))))
        rows.append(("B federated retrieve of an entity in A",
                     _measure(b, f"{API}/entities/urn:ngsi-ld:ParkingSpot:a-7", requests, found)))
        rows.append(("B query with local=true (registration unused)",
                     _measure(b, query + "&local=true", requests, page(limit))))
    return rows


def markdown(rows: list[tuple[str, dict[str, float]]], entities: int, requests: int,
             limit: int, load: float) -> str:
    """The results as a RESULTS.md section."""
    by_name = dict(rows)
    local = by_name["B local query (no registration)"]
    federated = by_name["B federated query (B + A merged)"]
    lines = [
        f"\n{HEADING}, {datetime.now(UTC):%Y-%m-%d}\n",
        f"`python -m bench.federation --entities {entities} --requests {requests}`: two "
        "`cityos serve` (SQLite, one worker each) on this 2-core machine, "
        f"{entities} ParkingSpots each, `type=ParkingSpot&limit={limit}`, one client, "
        f"sequential requests with keep-alive; load average at the start {load:.1f} (other "
        "work shared the machine, so absolute numbers are noisy; the difference is the point).\n",
        "| scenario | p50 | p95 | req/s |", "|---|---|---|---|"]
    for name, r in rows:
        lines.append(f"| {name} | {r['p50']:.2f} ms | {r['p95']:.2f} ms | {r['rps']:.0f} |")
    lines.append(
        f"\nA federated query adds {federated['p50'] - local['p50']:.2f} ms at p50 and "
        f"{federated['p95'] - local['p95']:.2f} ms at p95 over the local one: one HTTP round trip "
        "to the source (asked in parallel with the local store), parsing its normalized "
        "entities and merging. Without registrations the local path does one dictionary lookup "
        "more than before (ADR 0009).\n")
    return "\n".join(lines)


def main() -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--write", action="store_true", help="append to bench/RESULTS.md")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    rows = run(args.entities, args.requests, args.limit)
    text = markdown(rows, args.entities, args.requests, args.limit, load)
    print(text)
    if args.write:
        write_section(text)


def write_section(text: str) -> None:
    """Replace this benchmark's section of RESULTS.md (or append it when there is none)."""
    current = RESULTS.read_text(encoding="utf-8")
    start = current.find(HEADING)
    if start < 0:
        RESULTS.write_text(current.rstrip("\n") + "\n" + text, encoding="utf-8")
        return
    start = current.rfind("\n", 0, start)       # keep the blank line before the heading
    end = current.find("\n## ", start + 2)
    rest = current[end:] if end >= 0 else "\n"
    RESULTS.write_text(current[:start] + text.rstrip("\n") + "\n" + rest, encoding="utf-8")


if __name__ == "__main__":
    main()
