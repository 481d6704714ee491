"""The Kobe demo city shipped in cityos/data/demo (``cityos serve --demo``)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cityos.data.demo import demo_contexts, demo_entities

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO.parent / "shared" / "data"
DEMO_DIR = REPO / "cityos" / "data" / "demo"
CORE_CONTEXT = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"
CORE_CONTEXT_FILE = REPO / "cityos" / "data" / "ngsild" / "contexts" / "ngsi-ld-core-context-v1.8.jsonld"
NGSI_LD_LOCATION = "https://uri.etsi.org/ngsi-ld/location"
DEFAULT_VOCAB = "https://uri.etsi.org/ngsi-ld/default-context/"

# Kobe's bounding box (lon, lat)
LON_MIN, LON_MAX = 134.95, 135.30
LAT_MIN, LAT_MAX = 34.60, 34.85

JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")  # kana and CJK ideographs
ATTRIBUTE_TYPES = {"Property", "GeoProperty", "Relationship", "LanguageProperty"}
JP_TYPES = {"指定緊急避難場所一覧", "公共施設一覧", "AED設置箇所一覧", "公衆トイレ一覧", "観光施設一覧"}
SDM_TYPES = {"WeatherObserved", "Device", "AirQualityObserved", "OffStreetParking", "ParkingSpot",
             "StreetlightGroup", "Streetlight"}
ENTITY_KEYS = {"id", "type", "@context"}
FORBIDDEN_IN_NAMES = re.compile(r"[<>\"'=;()\s]")  # NGSI-LD forbids these in attribute names


@pytest.fixture(scope="module")
def entities() -> list[dict[str, Any]]:
    return demo_entities()


def _attributes(entity: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entity.items() if k not in ENTITY_KEYS}


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def test_a_few_hundred_entities_of_every_kind(entities: list[dict[str, Any]]) -> None:
    assert 250 <= len(entities) <= 400
    counts = Counter(e["type"] for e in entities)
    assert set(counts) == JP_TYPES | SDM_TYPES
    assert all(n >= 8 for n in counts.values()), counts


def test_ids_are_unique_urns_naming_their_type(entities: list[dict[str, Any]]) -> None:
    ids = [e["id"] for e in entities]
    assert len(ids) == len(set(ids))
    for entity in entities:
        prefix = f"urn:ngsi-ld:{entity['type']}:kobe:"
        assert entity["id"].startswith(prefix), entity["id"]
        assert re.fullmatch(r"[a-z0-9][a-z0-9-]*[A-Za-z0-9]", entity["id"][len(prefix):]), entity["id"]


def test_every_entity_is_located_in_kobe(entities: list[dict[str, Any]]) -> None:
    for entity in entities:
        location = entity["location"]
        assert location["type"] == "GeoProperty"
        assert location["value"]["type"] == "Point"
        lon, lat = location["value"]["coordinates"]
        assert LON_MIN <= lon <= LON_MAX and LAT_MIN <= lat <= LAT_MAX, (entity["id"], lon, lat)
        if "緯度" in entity:  # the jp datasets repeat the position as numbers
            assert (entity["経度"]["value"], entity["緯度"]["value"]) == (lon, lat)


def test_attributes_are_in_normalized_form(entities: list[dict[str, Any]]) -> None:
    for entity in entities:
        for name, attr in _attributes(entity).items():
            assert not FORBIDDEN_IN_NAMES.search(name), (entity["id"], name)
            assert isinstance(attr, dict) and attr.get("type") in ATTRIBUTE_TYPES, (entity["id"], name)
            kind = attr["type"]
            if kind in ("Property", "GeoProperty"):
                assert "value" in attr and attr["value"] is not None, (entity["id"], name)
            elif kind == "Relationship":
                assert isinstance(attr["object"], str) and attr["object"].startswith("urn:ngsi-ld:")
            else:
                assert set(attr["languageMap"]) == {"ja", "en"}, (entity["id"], name)
                assert JAPANESE.search(attr["languageMap"]["ja"]), (entity["id"], name)
            assert set(attr) <= {"type", "value", "object", "languageMap", "unitCode", "observedAt"}


def test_relationships_point_at_demo_entities(entities: list[dict[str, Any]]) -> None:
    by_id = {e["id"]: e for e in entities}
    relationships = Counter()
    for entity in entities:
        for name, attr in _attributes(entity).items():
            if attr["type"] == "Relationship":
                target = by_id.get(attr["object"])
                assert target is not None, (entity["id"], name, attr["object"])
                relationships[(entity["type"], name, target["type"])] += 1
    assert relationships[("ParkingSpot", "refParkingSite", "OffStreetParking")] > 0
    assert relationships[("Streetlight", "refStreetlightGroup", "StreetlightGroup")] > 0
    assert relationships[("WeatherObserved", "refDevice", "Device")] > 0
    assert relationships[("AirQualityObserved", "refWeatherObserved", "WeatherObserved")] > 0


def test_japanese_names_and_text(entities: list[dict[str, Any]]) -> None:
    for entity in entities:
        if entity["type"] in JP_TYPES:
            assert JAPANESE.search(entity["名称"]["value"]), entity["id"]
            assert re.fullmatch(r"[\u30a0-\u30ff0-9]+", entity["名称_カナ"]["value"]), entity["id"]
            assert entity["住所"]["value"].startswith("兵庫県神戸市"), entity["id"]
        else:
            assert any(JAPANESE.search(s) for s in _strings(_attributes(entity))), entity["id"]
    names = [e["name"] for e in entities if e.get("name", {}).get("type") == "LanguageProperty"]
    assert len(names) >= 40


def test_measurements_have_units_and_local_observation_times(entities: list[dict[str, Any]]) -> None:
    observed = 0
    for entity in entities:
        for attr in _attributes(entity).values():
            if "observedAt" in attr:
                observed += 1
                moment = datetime.fromisoformat(attr["observedAt"])
                assert moment.utcoffset() == timedelta(hours=9), attr["observedAt"]
                assert attr["observedAt"].endswith("+09:00")
    assert observed > 300
    weather = [e for e in entities if e["type"] == "WeatherObserved"]
    for entity in weather:
        assert entity["temperature"]["unitCode"] == "CEL"
        assert entity["windSpeed"]["unitCode"] == "MTS"
        assert 0 <= entity["relativeHumidity"]["value"] <= 1
        assert -5 < entity["temperature"]["value"] < 25
    for entity in entities:
        if entity["type"] == "AirQualityObserved":
            assert entity["pm25"]["unitCode"] == "GQ"


def test_every_context_is_shipped(entities: list[dict[str, Any]]) -> None:
    contexts = demo_contexts()
    used: set[str] = set()
    for entity in entities:
        assert isinstance(entity["@context"], list) and entity["@context"][-1] == CORE_CONTEXT
        for url in entity["@context"]:
            assert url == CORE_CONTEXT or url in contexts, (entity["id"], url)
            used.add(url)
    assert set(contexts) == used - {CORE_CONTEXT}, "contexts/index.json lists an unused context"
    for url, document in contexts.items():
        assert isinstance(document.get("@context"), dict), url


def test_every_attribute_expands_through_the_shipped_contexts(entities: list[dict[str, Any]]) -> None:
    """Expand each entity with a JSON-LD processor fed only the shipped contexts: no name may fall
    to the core context's default vocabulary, and ``location`` must stay the NGSI-LD one (the
    Japanese datasets' context redefines it; the core context listed last restores it)."""
    jsonld = pytest.importorskip("pyld.jsonld")
    documents: dict[str, Any] = dict(demo_contexts())
    documents[CORE_CONTEXT] = json.loads(CORE_CONTEXT_FILE.read_text(encoding="utf-8"))

    def loader(url: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"contextUrl": None, "documentUrl": url, "document": documents[url]}

    for entity in entities:
        [expanded] = jsonld.expand(entity, {"documentLoader": loader})
        assert NGSI_LD_LOCATION in expanded, entity["id"]
        fallen = [k for k in expanded if k.startswith(DEFAULT_VOCAB)]
        assert not fallen, (entity["id"], fallen)
        assert len(expanded) - 2 == len(_attributes(entity)), entity["id"]  # minus @id, @type


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="shared/ (the data models) is not beside the repo")
def test_the_generator_reproduces_the_committed_files(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "build_demo.py"), "--shared", str(SHARED_DATA),
         "--out", str(tmp_path)],
        capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 0, result.stderr
    built = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert built, "the generator wrote nothing"
    for relative in built:
        assert (tmp_path / relative).read_bytes() == (DEMO_DIR / relative).read_bytes(), relative
    committed = {p.relative_to(DEMO_DIR) for p in (DEMO_DIR / "contexts").iterdir()}
    assert committed == {p for p in built if p.parts[0] == "contexts"}
