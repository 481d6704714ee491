"""Examples for the NGSI-LD OpenAPI document, with Japanese city data (Kobe, JST ``+09:00``).

The main example is a designated emergency evacuation site (指定緊急避難場所) in Chūō-ku, Kobe.
``observedAt`` is written in Japan time as a sensor would send it; the broker stores and returns
the same instant in UTC, which the response examples show.
"""

from __future__ import annotations

from typing import Any

SITE_ID = "urn:ngsi-ld:EvacuationSite:kobe-higashiyuenchi"
SCHOOL_ID = "urn:ngsi-ld:EvacuationSite:kobe-kano-es"
CITY_ID = "urn:ngsi-ld:Organization:kobe-city"
CORE_CONTEXT = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"
SANNOMIYA = [135.1955, 34.6946]  # JR 三ノ宮駅, lon/lat

_LOCATION = {"type": "Point", "coordinates": [135.1957, 34.6899]}

SITE_NORMALIZED: dict[str, Any] = {
    "id": SITE_ID,
    "type": "EvacuationSite",
    "scope": "/Japan/Hyogo/Kobe/Chuo",
    "name": {"type": "LanguageProperty",
             "languageMap": {"ja": "東遊園地", "ja-Hira": "ひがしゆうえんち", "en": "Higashi Yuenchi Park"}},
    "designation": {"type": "Property", "value": "指定緊急避難場所"},
    "address": {"type": "Property",
                "value": {"addressRegion": "兵庫県", "addressLocality": "神戸市中央区",
                          "streetAddress": "加納町6丁目", "postalCode": "650-0001"}},
    "hazardTypes": {"type": "ListProperty", "valueList": ["地震", "大規模な火事"]},
    "capacity": {"type": "Property", "value": 8000, "unitCode": "C62"},
    "occupancy": {"type": "Property", "value": 1250, "unitCode": "C62",
                  "observedAt": "2026-11-25T09:00:00+09:00"},
    "openingStatus": {"type": "VocabProperty", "vocab": "open"},
    "operator": {"type": "Relationship", "object": CITY_ID, "objectType": "Organization"},
    "facilities": {"type": "JsonProperty",
                   "json": {"トイレ": 24, "AED": True, "備蓄倉庫": "公園北側"}},
    "location": {"type": "GeoProperty", "value": _LOCATION},
}

SITE_CONCISE: dict[str, Any] = {
    "id": SCHOOL_ID,
    "type": "EvacuationSite",
    "name": {"languageMap": {"ja": "神戸市立こうべ小学校", "en": "Kobe Elementary School"}},
    "designation": "指定避難所",
    "capacity": {"value": 650, "unitCode": "C62"},
    "occupancy": {"value": 83, "observedAt": "2026-11-25T09:15:00+09:00"},
    "operator": {"object": CITY_ID},
    "location": {"type": "Point", "coordinates": [135.1919, 34.6965]},
}

SITE_RETURNED: dict[str, Any] = {
    **SITE_NORMALIZED,
    "occupancy": {"type": "Property", "value": 1250, "unitCode": "C62",
                  "observedAt": "2026-11-25T00:00:00.000Z"},
}

# simplified: a Property is its value; the other attribute types keep their value member
SITE_KEY_VALUES: dict[str, Any] = {
    "id": SITE_ID, "type": "EvacuationSite", "scope": "/Japan/Hyogo/Kobe/Chuo",
    "name": {"languageMap": SITE_NORMALIZED["name"]["languageMap"]},
    "designation": "指定緊急避難場所", "address": SITE_NORMALIZED["address"]["value"],
    "hazardTypes": {"valueList": ["地震", "大規模な火事"]}, "capacity": 8000, "occupancy": 1250,
    "openingStatus": {"vocab": "open"}, "operator": CITY_ID,
    "facilities": {"json": SITE_NORMALIZED["facilities"]["json"]}, "location": _LOCATION,
}

FEATURES: dict[str, Any] = {
    "type": "FeatureCollection",
    "features": [{"id": SITE_ID, "type": "Feature", "geometry": _LOCATION,
                  "properties": {"type": "EvacuationSite", "scope": "/Japan/Hyogo/Kobe/Chuo",
                                 "name": {"type": "Property", "value": "東遊園地", "lang": "ja"},
                                 "capacity": SITE_RETURNED["capacity"],
                                 "occupancy": SITE_RETURNED["occupancy"]}}],
}

APPEND: dict[str, Any] = {
    "occupancy": {"type": "Property", "value": 1310, "unitCode": "C62",
                  "observedAt": "2026-11-25T09:30:00+09:00"},
    "notice": {"type": "LanguageProperty",
               "languageMap": {"ja": "毛布を配布中です", "en": "Blankets are being handed out"}},
}

MERGE_PATCH: dict[str, Any] = {
    "occupancy": {"value": 1402, "observedAt": "2026-11-25T10:00:00+09:00"},
    "openingStatus": {"vocab": "full"},
    "notice": "urn:ngsi-ld:null",
}

ATTRIBUTE: dict[str, Any] = {"type": "Property", "value": 1402, "unitCode": "C62",
                             "observedAt": "2026-11-25T10:00:00+09:00"}
PARTIAL_ATTRIBUTE: dict[str, Any] = {"value": 1455, "observedAt": "2026-11-25T10:15:00+09:00"}

QUERY: dict[str, Any] = {
    "type": "Query",
    "entities": [{"type": "EvacuationSite"}],
    "attrs": ["name", "occupancy", "location"],
    "q": 'occupancy<5000;openingStatus=="open"',
    "geoQ": {"georel": "near;maxDistance==1500", "geometry": "Point", "coordinates": SANNOMIYA},
}

BATCH_RESULT: dict[str, Any] = {
    "success": [SITE_ID],
    "errors": [{"entityId": SCHOOL_ID,
                "error": {"type": "https://uri.etsi.org/ngsi-ld/errors/AlreadyExists",
                          "title": "Already exists", "status": 409,
                          "detail": f"entity {SCHOOL_ID} already exists"}}],
}

UPDATE_RESULT: dict[str, Any] = {
    "updated": ["notice"],
    "notUpdated": [{"attributeName": "occupancy",
                    "reason": "attribute exists and noOverwrite was set, or it does not exist for "
                              "an update"}],
}

TYPE_LIST: dict[str, Any] = {
    "id": "urn:ngsi-ld:EntityTypeList:5b1e0c6a9d3f4e2a8c7b6a5d4e3f2a1b", "type": "EntityTypeList",
    "typeList": ["EvacuationSite", "WeatherObserved"],
}
TYPE_INFO: dict[str, Any] = {
    "id": "https://uri.etsi.org/ngsi-ld/default-context/EvacuationSite", "type": "EntityTypeInfo",
    "typeName": "EvacuationSite", "entityCount": 2,
    "attributeDetails": [
        {"id": "https://uri.etsi.org/ngsi-ld/default-context/capacity", "type": "Attribute",
         "attributeName": "capacity", "attributeTypes": ["Property"]},
        {"id": "https://uri.etsi.org/ngsi-ld/location", "type": "Attribute",
         "attributeName": "location", "attributeTypes": ["GeoProperty"]},
    ],
}
ATTRIBUTE_LIST: dict[str, Any] = {
    "id": "urn:ngsi-ld:AttributeList:0f9e8d7c6b5a49382716a5b4c3d2e1f0", "type": "AttributeList",
    "attributeList": ["capacity", "location", "name", "occupancy"],
}
ATTRIBUTE_INFO: dict[str, Any] = {
    "id": "https://uri.etsi.org/ngsi-ld/default-context/occupancy", "type": "Attribute",
    "attributeName": "occupancy", "attributeCount": 2, "attributeTypes": ["Property"],
    "typeNames": ["EvacuationSite"],
}

HOSTED_CONTEXT: dict[str, Any] = {
    "@context": {"EvacuationSite": "https://example.city.kobe.lg.jp/ns/EvacuationSite",
                 "occupancy": "https://example.city.kobe.lg.jp/ns/occupancy"},
}


def problem(name: str, status: int, title: str, detail: str, **extra: Any) -> dict[str, Any]:
    """A problem-details example body."""
    return {"type": f"https://uri.etsi.org/ngsi-ld/errors/{name}", "title": title,
            "status": status, "detail": detail, **extra}


def example(value: Any, summary: str) -> dict[str, Any]:
    """An OpenAPI Example Object."""
    return {"summary": summary, "value": value}
