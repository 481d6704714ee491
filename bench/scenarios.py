"""The scenarios: what each one sends, at which concurrency, and the target it must meet.

Targets come from ``DESIGN.md`` ("Peers' numbers to beat").  A scenario passes when every one of
its targets is met and no request failed (any non-2xx answer is an error).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

import orjson

from bench.data import BASE, KOBE_BBOX, OBSERVED, device_id, parking_spot, spot_id
from bench.loadgen import Req, Stats


@dataclass(frozen=True)
class Target:
    """Minimum req/s, minimum entities/s and maximum p95 (ms); None = not a target."""

    rate: float | None = None
    item_rate: float | None = None
    p95_ms: float | None = None

    def describe(self) -> str:
        parts = []
        if self.rate is not None:
            parts.append(f">= {self.rate:,.0f} req/s")
        if self.item_rate is not None:
            parts.append(f">= {self.item_rate:,.0f} entities/s")
        if self.p95_ms is not None:
            parts.append(f"p95 < {self.p95_ms:g} ms")
        return ", ".join(parts) or "(informational)"

    def judge(self, stats: Stats) -> tuple[str, list[str]]:
        """("PASS" | "MISS" | "INFO", ratios achieved/target, > 1 is better)."""
        ratios: list[tuple[float, str]] = []
        if self.rate is not None:
            ratios.append((stats.rate / self.rate, "req/s"))
        if self.item_rate is not None:
            ratios.append((stats.item_rate / self.item_rate, "ent/s"))
        if self.p95_ms is not None:
            p95 = stats.percentile(95)
            ratios.append((self.p95_ms / p95 if p95 > 0 else float("inf"), "p95"))
        text = [f"{r:.2f}x {what}" for r, what in ratios]
        if not ratios:
            return ("MISS" if stats.errors or not stats.requests else "INFO"), text
        ok = all(r >= 1.0 for r, _ in ratios) and stats.errors == 0 and stats.requests > 0
        return ("PASS" if ok else "MISS"), text


@dataclass
class Dataset:
    """What is loaded in the server: ParkingSpots 0..spots-1, Devices spots..total-1."""

    spots: int = 0
    total: int = 0


Maker = Callable[[int], Req]


@dataclass(frozen=True)
class Scenario:
    """One benchmark scenario."""

    name: str
    title: str
    concurrency: int
    target: Target
    needs: str                                   # "none", "query" (ParkingSpots) or "scale"
    build: Callable[[Dataset, str, int], Maker]  # (dataset, run id, seed) -> make(i)
    detail: str


class EntityTemplates:
    """Serialized ParkingSpots whose id is spliced in per request (cheap for the client)."""

    PLACEHOLDER = "urn:ngsi-ld:ParkingSpot:__BENCH_ID__"

    def __init__(self, count: int, seed: int) -> None:
        rng = random.Random(seed)
        self.parts: list[tuple[bytes, bytes]] = []
        for _ in range(count):
            text = orjson.dumps(parking_spot(self.PLACEHOLDER, rng))
            head, tail = text.split(self.PLACEHOLDER.encode(), 1)
            self.parts.append((head, tail))

    def one(self, k: int, entity_id: str) -> bytes:
        head, tail = self.parts[k % len(self.parts)]
        return head + entity_id.encode() + tail

    def many(self, k: int, ids: list[str]) -> bytes:
        return b"[" + b",".join(self.one(k + j, e) for j, e in enumerate(ids)) + b"]"


def _create(ds: Dataset, run: str, seed: int) -> Maker:
    templates = EntityTemplates(1000, seed)

    def make(i: int) -> Req:
        return Req("POST", f"{BASE}/entities",
                   templates.one(i, f"urn:ngsi-ld:ParkingSpot:bench-create-{run}-{i}"))
    return make


def _entity_path(ds: Dataset, i: int) -> str:
    return f"{BASE}/entities/{spot_id(i) if i < ds.spots else device_id(i)}"


def _get(ds: Dataset, run: str, seed: int) -> Maker:
    rng = random.Random(seed)

    def make(i: int) -> Req:
        return Req("GET", _entity_path(ds, rng.randrange(ds.total)))
    return make


def _update(ds: Dataset, run: str, seed: int) -> Maker:
    rng = random.Random(seed)

    def make(i: int) -> Req:
        body = orjson.dumps({
            "availableSpotNumber": {"type": "Property", "value": rng.randint(0, 100),
                                    "observedAt": OBSERVED},
            "status": {"type": "Property", "value": rng.choice(("free", "occupied"))},
        })
        return Req("PATCH", f"{_entity_path(ds, rng.randrange(ds.spots))}/attrs", body)
    return make


def _qs(**params: str | int) -> str:
    return "&".join(f"{k}={quote(str(v), safe='')}" for k, v in params.items())


def _query(ds: Dataset, run: str, seed: int, count: bool = False) -> Maker:
    rng = random.Random(seed)

    def make(i: int) -> Req:
        q = f'availableSpotNumber>{rng.randint(30, 70)};status=="free"'
        extra = {"count": "true"} if count else {}
        return Req("GET", f"{BASE}/entities?" + _qs(type="ParkingSpot", q=q, limit=20, **extra))
    return make


def _point(rng: random.Random) -> tuple[float, float]:
    minx, miny, maxx, maxy = KOBE_BBOX
    return round(rng.uniform(minx, maxx), 5), round(rng.uniform(miny, maxy), 5)


def _near(ds: Dataset, run: str, seed: int) -> Maker:
    rng = random.Random(seed)

    def make(i: int) -> Req:
        x, y = _point(rng)
        return Req("GET", f"{BASE}/entities?" + _qs(
            type="ParkingSpot", georel="near;maxDistance==500", geometry="Point",
            coordinates=f"[{x},{y}]", limit=20))
    return make


def _within(ds: Dataset, run: str, seed: int) -> Maker:
    rng = random.Random(seed)
    dx, dy = 0.011, 0.009  # about 1 km x 1 km at Kobe's latitude

    def make(i: int) -> Req:
        x, y = _point(rng)
        x, y = min(x, KOBE_BBOX[2] - dx), min(y, KOBE_BBOX[3] - dy)
        ring = [[x, y], [x + dx, y], [x + dx, y + dy], [x, y + dy], [x, y]]
        coords = orjson.dumps([[[round(a, 5), round(b, 5)] for a, b in ring]]).decode()
        return Req("GET", f"{BASE}/entities?" + _qs(
            type="ParkingSpot", georel="within", geometry="Polygon", coordinates=coords,
            limit=100))
    return make


BATCH = 100


def _batch(ds: Dataset, run: str, seed: int) -> Maker:
    templates = EntityTemplates(1000, seed)

    def make(i: int) -> Req:
        ids = [f"urn:ngsi-ld:ParkingSpot:bench-batch-{run}-{i * BATCH + j}" for j in range(BATCH)]
        return Req("POST", f"{BASE}/entityOperations/upsert", templates.many(i * BATCH, ids),
                   items=BATCH)
    return make


SCENARIOS: list[Scenario] = [
    # Order matters: reads run on the ParkingSpot set before writes add to it.
    Scenario("query", "query by type + q", 8, Target(rate=500, p95_ms=50), "query", _query,
             'GET /entities?type=ParkingSpot&q=availableSpotNumber>{30..70};status=="free"'
             "&limit=20"),
    Scenario("query-count", "query + count=true (full scan)", 4, Target(), "query",
             lambda ds, run, seed: _query(ds, run, seed, count=True),
             "the query above with count=true: every match must be counted"),
    Scenario("geo-near", "geo near, 500 m", 8, Target(p95_ms=30), "query", _near,
             "GET /entities?type=ParkingSpot&georel=near;maxDistance==500&geometry=Point"
             "&coordinates=[random point in Kobe]&limit=20"),
    Scenario("geo-within", "geo within 1 km²", 8, Target(p95_ms=30), "query", _within,
             "GET /entities?type=ParkingSpot&georel=within&geometry=Polygon"
             "&coordinates=[random 1 km square in Kobe]&limit=100"),
    Scenario("get", "get entity by id", 16, Target(rate=4000, p95_ms=10), "scale", _get,
             "GET /entities/{random id among all stored entities} (normalized)"),
    Scenario("update", "update attributes", 32, Target(rate=2000), "query", _update,
             "PATCH /entities/{random ParkingSpot}/attrs with 2 attributes"),
    Scenario("create", "create entity", 32, Target(rate=1500), "none", _create,
             "POST /entities, one new ParkingSpot (~600 B) per request"),
    Scenario("batch", "batch upsert 100/request", 8, Target(item_rate=15000), "none", _batch,
             f"POST /entityOperations/upsert with {BATCH} new ParkingSpots per request"),
]
BY_NAME = {s.name: s for s in SCENARIOS}
