"""Synthetic but realistic city data, reproducible from a seed.

* ``ParkingSpot`` entities (the query / geo / update set): a point spread uniformly over Kobe,
  ``status`` in free / occupied / closed, ``availableSpotNumber`` 0-100, a name, a category and a
  relationship, about 600 bytes of normalized NGSI-LD each.
* ``Device`` entities fill the store up to ``--scale`` for get-by-id; they carry no location, so
  the geo scenarios always run over exactly the ParkingSpot points.

No ``Link`` header is sent: every term expands with the core context's default vocabulary.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import orjson

from bench.loadgen import Req

BASE = "/ngsi-ld/v1"
# Kobe (神戸市): west Tarumi to east Higashinada, the coast to Kita-ku's southern hills
KOBE_BBOX = (135.00, 34.63, 135.28, 34.78)  # min lon, min lat, max lon, max lat
STATUSES = ("free", "occupied", "closed")
OBSERVED = "2025-11-25T09:00:00Z"


def spot_id(i: int) -> str:
    return f"urn:ngsi-ld:ParkingSpot:kobe-{i:07d}"


def device_id(i: int) -> str:
    return f"urn:ngsi-ld:Device:kobe-{i:07d}"


def kobe_point(rng: random.Random) -> list[float]:
    minx, miny, maxx, maxy = KOBE_BBOX
    return [round(rng.uniform(minx, maxx), 6), round(rng.uniform(miny, maxy), 6)]


def parking_spot(entity_id: str, rng: random.Random) -> dict[str, Any]:
    """A ParkingSpot in normalized form."""
    return {
        "id": entity_id,
        "type": "ParkingSpot",
        "name": {"type": "Property", "value": f"Spot {entity_id.rsplit('-', 1)[-1]}"},
        "status": {"type": "Property", "value": rng.choice(STATUSES), "observedAt": OBSERVED},
        "availableSpotNumber": {"type": "Property", "value": rng.randint(0, 100),
                                "observedAt": OBSERVED},
        "category": {"type": "Property", "value": ["onStreet", "forDisabled"]},
        "refParkingSite": {"type": "Relationship",
                           "object": f"urn:ngsi-ld:ParkingSite:kobe-{rng.randint(0, 999):03d}"},
        "location": {"type": "GeoProperty",
                     "value": {"type": "Point", "coordinates": kobe_point(rng)}},
    }


def device(entity_id: str, rng: random.Random) -> dict[str, Any]:
    """A Device (a sensor) in normalized form, without location."""
    return {
        "id": entity_id,
        "type": "Device",
        "category": {"type": "Property", "value": ["sensor"]},
        "controlledProperty": {"type": "Property", "value": ["temperature", "humidity"]},
        "serialNumber": {"type": "Property", "value": f"SN-{rng.getrandbits(40):010x}"},
        "batteryLevel": {"type": "Property", "value": round(rng.random(), 3),
                         "observedAt": OBSERVED},
        "deviceState": {"type": "Property", "value": rng.choice(("ok", "maintenance"))},
    }


def upsert_batches(kind: str, start: int, stop: int, batch: int, seed: int) -> Iterator[Req]:
    """``POST /entityOperations/upsert`` requests carrying entities ``start..stop-1``."""
    maker, ident = (parking_spot, spot_id) if kind == "ParkingSpot" else (device, device_id)
    for first in range(start, stop, batch):
        rng = random.Random(f"{seed}-{kind}-{first}")
        last = min(stop, first + batch)
        body = orjson.dumps([maker(ident(i), rng) for i in range(first, last)])
        yield Req("POST", f"{BASE}/entityOperations/upsert", body, items=last - first)
