#!/usr/bin/env python3
"""Build the Kobe demo city shipped in ``cityos/data/demo`` (``cityos serve --demo``).

Reads the data models in ``<repo>/../shared/data`` (FIWARE Smart Data Models and Japan's
recommended datasets) for their context URLs, attribute names and context files, combines them
with the place tables in ``scripts/demo/*.csv`` and writes:

* ``kobe.jsonld``: a JSON array of NGSI-LD normalized entities, one per line;
* ``contexts/``: byte-for-byte copies of the JSON-LD contexts the entities reference, and
  ``contexts/index.json`` mapping each context URL to its file name.

The output is deterministic (fixed seed and snapshot time): running the script again must give
the committed files byte for byte (``tests/data/test_demo_dataset.py`` checks it).

    .venv/bin/python scripts/build_demo.py [--shared DIR] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from demo import jp, sdm  # noqa: E402
from demo.common import SEED, load_places  # noqa: E402
from demo.sources import Models, check_entity, read_models  # noqa: E402

# attributes allowed to fall to the core context's default vocabulary (none at present)
DEFAULT_VOCAB_OK: frozenset[str] = frozenset()

TYPE_ORDER = ["指定緊急避難場所一覧", "公共施設一覧", "AED設置箇所一覧", "公衆トイレ一覧", "観光施設一覧",
              "WeatherObserved", "Device", "AirQualityObserved", "OffStreetParking", "ParkingSpot",
              "StreetlightGroup", "Streetlight"]


def build(models: Models) -> list[dict[str, Any]]:
    """Every entity of the demo city, grouped by type."""
    rng = random.Random(SEED)
    places = load_places()
    ctx = {t: m.context_url for t, m in models.types.items()}
    entities: list[dict[str, Any]] = []
    entities += jp.evacuation_sites(places)
    entities += jp.public_facilities(places)
    entities += jp.aeds(places)
    entities += jp.public_toilets(places)
    entities += jp.tourist_facilities(places)
    entities += sdm.weather(rng, ctx)
    entities += sdm.air_quality(rng, ctx)
    entities += sdm.parking(rng, ctx)
    entities += sdm.street_lights(rng, ctx)
    entities.sort(key=lambda e: TYPE_ORDER.index(e["type"]))  # stable: keeps the build order

    ids = Counter(e["id"] for e in entities)
    duplicates = [i for i, n in ids.items() if n > 1]
    if duplicates:
        raise ValueError(f"duplicate ids: {duplicates}")
    known = set(ids)
    for entity in entities:
        check_entity(entity, models, DEFAULT_VOCAB_OK)
        for attr in entity.values():
            if (isinstance(attr, dict) and attr.get("type") == "Relationship"
                    and attr["object"] not in known):
                raise ValueError(f"{entity['id']}: dangling relationship to {attr['object']}")
    return entities


def render(entities: list[dict[str, Any]]) -> bytes:
    """The JSON array, one compact entity per line (UTF-8, not ASCII-escaped)."""
    lines = [json.dumps(e, ensure_ascii=False, separators=(",", ":")) for e in entities]
    return ("[\n" + ",\n".join(lines) + "\n]\n").encode("utf-8")


def write(out: Path, entities: list[dict[str, Any]], models: Models) -> None:
    """Write kobe.jsonld and the contexts the entities reference."""
    used = {url for e in entities for url in e["@context"] if url in models.contexts}
    contexts_dir = out / "contexts"
    contexts_dir.mkdir(parents=True, exist_ok=True)
    index: dict[str, str] = {}
    for url in sorted(used):
        name, raw = models.contexts[url]
        (contexts_dir / name).write_bytes(raw)
        index[url] = name
    (contexts_dir / "index.json").write_text(
        json.dumps(index, indent=2, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")
    (out / "kobe.jsonld").write_bytes(render(entities))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data",
                        help="the shared data folder (default: <repo>/../shared/data)")
    parser.add_argument("--out", type=Path, default=REPO / "cityos" / "data" / "demo",
                        help="output folder (default: cityos/data/demo)")
    args = parser.parse_args(argv)
    models = read_models(args.shared)
    entities = build(models)
    write(args.out, entities, models)
    counts = Counter(e["type"] for e in entities)
    summary = ", ".join(f"{t} {counts[t]}" for t in TYPE_ORDER)
    print(f"wrote {len(entities)} entities to {args.out / 'kobe.jsonld'}: {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
