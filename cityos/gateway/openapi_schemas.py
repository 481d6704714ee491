"""JSON Schemas (OpenAPI 3.1 = JSON Schema 2020-12) of the NGSI-LD payloads CityOS accepts and returns.

Written from the broker's code (:mod:`cityos.data.ngsild.payload`, ``render``, ``batch``, the
discovery and ``@context`` routes) rather than copied from ETSI's OpenAPI files, so every schema
says what *this* broker does.
"""

from __future__ import annotations

from typing import Any

from cityos.core import problems
from cityos.core.settings import Settings

Schema = dict[str, Any]

# Mirrors of broker internals (ADR 0001: a block sees only another block's public interface).
# tests/gateway/test_openapi.py checks them against cityos.data.ngsild's model, geojson, geoquery.
VALUE_KEY: dict[str, str] = {
    "Property": "value", "Relationship": "object", "GeoProperty": "value",
    "LanguageProperty": "languageMap", "VocabProperty": "vocab", "ListProperty": "valueList",
    "ListRelationship": "objectList", "JsonProperty": "json",
}
ATTRIBUTE_TYPES = frozenset(VALUE_KEY)
GEOMETRY_TYPES: tuple[str, ...] = (
    "Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon",
)
GEOMETRY_COLLECTION = "GeometryCollection"
GEORELS: tuple[str, ...] = ("near", "within", "contains", "intersects", "overlaps", "disjoint", "equals")


def ref(name: str) -> Schema:
    """A ``$ref`` to ``#/components/schemas/<name>``."""
    return {"$ref": f"#/components/schemas/{name}"}


def problem_type_uris() -> list[str]:
    """Every NGSI-LD error type URI the code defines (one per :class:`Problem` subclass)."""
    seen: list[str] = []
    pending: list[type[problems.Problem]] = [problems.Problem]
    while pending:
        cls = pending.pop()
        if cls.type_uri not in seen:
            seen.append(cls.type_uri)
        pending.extend(cls.__subclasses__())
    return sorted(seen)


_URI: Schema = {"type": "string", "format": "uri"}
_DATE_TIME: Schema = {"type": "string", "format": "date-time"}
_NAME: Schema = {"type": "string", "minLength": 1, "maxLength": 512, "pattern": r"^[^<>\"'=;()\s\\]+$"}
_SYSTEM_TIME: Schema = {**_DATE_TIME, "readOnly": True,
                        "description": "Set by the broker in UTC (`Z`); returned with `options=sysAttrs`."}


def _geometry_schemas() -> dict[str, Schema]:
    position: Schema = {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 3,
                        "description": "[longitude, latitude] or [longitude, latitude, altitude], "
                                       "WGS84 degrees (RFC 7946)."}
    ring: Schema = {"type": "array", "items": ref("GeoJSONPosition"), "minItems": 4,
                    "description": "A closed linear ring: the first and last positions are equal."}
    coordinates: dict[str, Schema] = {
        "Point": ref("GeoJSONPosition"),
        "MultiPoint": {"type": "array", "items": ref("GeoJSONPosition")},
        "LineString": {"type": "array", "items": ref("GeoJSONPosition"), "minItems": 2},
        "MultiLineString": {"type": "array",
                            "items": {"type": "array", "items": ref("GeoJSONPosition"), "minItems": 2}},
        "Polygon": {"type": "array", "items": ring},
        "MultiPolygon": {"type": "array", "items": {"type": "array", "items": ring}},
    }
    out: dict[str, Schema] = {"GeoJSONPosition": position}
    for name in GEOMETRY_TYPES:
        out[f"GeoJSON{name}"] = {
            "type": "object", "required": ["type", "coordinates"],
            "properties": {"type": {"const": name}, "coordinates": coordinates[name],
                           "bbox": {"type": "array", "items": {"type": "number"}}},
        }
    out["GeoJSONGeometryCollection"] = {
        "type": "object", "required": ["type", "geometries"],
        "properties": {"type": {"const": GEOMETRY_COLLECTION},
                       "geometries": {"type": "array", "items": ref("GeoJSONGeometry")}},
    }
    out["GeoJSONGeometry"] = {
        "description": "A GeoJSON geometry (RFC 7946 3.1): the value of a GeoProperty. Coordinates are "
                       "lon/lat on WGS84; Japan is roughly 122-154 E, 20-46 N.",
        "oneOf": [ref(f"GeoJSON{name}") for name in (*GEOMETRY_TYPES, GEOMETRY_COLLECTION)],
        "discriminator": {"propertyName": "type"},
    }
    return out


def _attribute_schemas() -> dict[str, Schema]:
    """One schema per attribute type of ``model.ATTRIBUTE_TYPES``, plus their union."""
    common: dict[str, Schema] = {
        "observedAt": {**_DATE_TIME, "description": "When the value was observed. Any ISO 8601 offset "
                       "is accepted (e.g. `2026-11-25T09:00:00+09:00`); it is stored and returned "
                       "in UTC (`2026-11-25T00:00:00.000Z`)."},
        "unitCode": {"type": "string", "minLength": 1,
                     "description": "UN/CEFACT unit code, e.g. `CEL` (°C), `C62` (people)."},
        "datasetId": {**_URI, "description": "Identifies one instance of a multi-attribute; the "
                      "default instance has none."},
        "createdAt": _SYSTEM_TIME,
        "modifiedAt": _SYSTEM_TIME,
    }
    values: dict[str, tuple[Schema, str]] = {
        "Property": ({"not": {"type": "null"}, "description": "Any JSON value except null."},
                     "A value: number, string, boolean, array or object."),
        "Relationship": ({"oneOf": [_URI, {"type": "array", "items": _URI}]},
                         "A link to one (or several) other entities by id."),
        "GeoProperty": (ref("GeoJSONGeometry"), "A GeoJSON geometry (e.g. `location`)."),
        "LanguageProperty": ({"type": "object", "minProperties": 1,
                              "propertyNames": {"pattern": r"^([A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*|@none)$"},
                              "additionalProperties": {"oneOf": [
                                  {"type": "string"}, {"type": "array", "items": {"type": "string"}}]}},
                             "Text in several languages keyed by BCP 47 tag (`ja`, `en`, `ja-Hira`...). "
                             "`lang=ja` returns it as a Property with the chosen `lang`."),
        "VocabProperty": ({"oneOf": [_NAME, {"type": "array", "items": _NAME}]},
                          "A term (or terms) of the vocabulary, expanded with the @context."),
        "ListProperty": ({"type": "array"}, "An ordered list of values."),
        "ListRelationship": ({"type": "array", "items": {"oneOf": [
            _URI, {"type": "object", "required": ["object"], "properties": {"object": _URI}}]}},
            "An ordered list of entity ids."),
        "JsonProperty": ({"description": "Any JSON; its keys are never expanded."},
                         "Raw JSON kept as is (not interpreted as JSON-LD)."),
    }
    assert set(values) == set(ATTRIBUTE_TYPES), "document every attribute type of the model"
    out: dict[str, Schema] = {}
    for kind, (value_schema, description) in values.items():
        key = VALUE_KEY[kind]
        props: dict[str, Schema] = {"type": {"const": kind}, key: value_schema, **common}
        if kind in ("Relationship", "ListRelationship"):
            props["objectType"] = {**_NAME, "description": "The type of the target entity."}
        if kind == "Relationship":
            props["entity"] = {"readOnly": True, "oneOf": [
                {"type": "object"}, {"type": "array", "items": {"type": "object"}}],
                "description": "With `join=inline`: the entity `object` points to (an array when "
                               "`object` is one); absent when it does not exist."}
        if kind == "ListRelationship":
            props["entityList"] = {"readOnly": True, "type": "array", "items": {"type": "object"},
                                   "description": "With `join=inline`: the entities `objectList` "
                                                  "points to that exist, in order."}
        if kind == "Property":
            props["lang"] = {"type": "string", "readOnly": True,
                             "description": "The language picked from a LanguageProperty by `lang`."}
        out[kind] = {
            "type": "object", "description": f"{description} Other members are sub-attributes.",
            "required": ["type", key], "properties": props,
            "additionalProperties": ref("NormalizedAttribute"),
        }
    out["NormalizedAttribute"] = {
        "description": "An attribute (or sub-attribute) in normalized form: one of the eight NGSI-LD "
                       "attribute types, chosen by `type`.",
        "oneOf": [ref(kind) for kind in values],
        "discriminator": {"propertyName": "type"},
    }
    out["ConciseAttribute"] = {
        "description": "An attribute in concise form: `type` may be left out when the value member "
                       "tells it (`value`, `object`, `languageMap`, `vocab`, `valueList`, "
                       "`objectList`, `json`); a bare value is a Property and a bare GeoJSON "
                       "geometry a GeoProperty.",
        "anyOf": [ref("NormalizedAttribute"), ref("GeoJSONGeometry"),
                  {"type": "object", "minProperties": 1},
                  {"type": ["string", "number", "integer", "boolean", "array"]}],
    }
    return out


def _entity_schemas() -> dict[str, Schema]:
    types: Schema = {"oneOf": [_NAME, {"type": "array", "items": _NAME, "minItems": 1}],
                     "description": "Entity type(s), compacted with the @context."}
    scope: Schema = {"oneOf": [{"type": "string", "pattern": "^/"},
                               {"type": "array", "items": {"type": "string", "pattern": "^/"}}],
                     "description": "Scope path(s) such as `/Japan/Hyogo/Kobe` (clause 4.18)."}
    multi: Schema = {"oneOf": [ref("NormalizedAttribute"),
                               {"type": "array", "items": ref("NormalizedAttribute"), "minItems": 1,
                                "description": "Several instances, told apart by `datasetId`."}]}
    base: dict[str, Schema] = {
        "id": {**_URI, "description": "The entity id, an absolute URI such as "
               "`urn:ngsi-ld:EvacuationSite:kobe-higashiyuenchi`.", "maxLength": 2048},
        "type": types, "scope": scope,
        "location": ref("GeoProperty"), "observationSpace": ref("GeoProperty"),
        "operationSpace": ref("GeoProperty"),
        "createdAt": _SYSTEM_TIME, "modifiedAt": _SYSTEM_TIME,
        "@context": ref("LdContext"),
    }
    return {
        "LdContext": {
            "description": "A JSON-LD @context: a URL, an inline object, or an array of them. Only "
                           "in `application/ld+json` bodies; with `application/json` send it in "
                           "the `Link` header instead.",
            "oneOf": [_URI, {"type": "object"},
                      {"type": "array", "items": {"oneOf": [_URI, {"type": "object"}]}}],
        },
        "Entity": {
            "type": "object", "required": ["id", "type"],
            "description": "An entity in normalized form: every attribute carries its `type`.",
            "properties": base, "additionalProperties": multi,
        },
        "EntityConcise": {
            "type": "object", "required": ["id", "type"],
            "description": "An entity in concise form (`options=concise` / `format=concise`): "
                           "attribute `type` members are dropped where the value tells them.",
            "properties": {**base, "location": ref("ConciseAttribute")},
            "additionalProperties": {"anyOf": [ref("ConciseAttribute"),
                                               {"type": "array", "items": ref("ConciseAttribute")}]},
        },
        "EntityKeyValues": {
            "type": "object", "required": ["id", "type"],
            "description": "An entity in simplified form (`options=keyValues`): attribute name -> "
                           "value (the default instance only). Read-only.",
            "properties": {"id": _URI, "type": types, "scope": scope},
            "additionalProperties": True,
        },
        "EntityFragment": {
            "type": "object",
            "description": "Attributes to append, update or merge (normalized or concise). `id` "
                           "and `type` are optional; `id`, when given, must equal the URL's.",
            "properties": {k: v for k, v in base.items() if k not in ("createdAt", "modifiedAt")},
            "additionalProperties": {"anyOf": [ref("ConciseAttribute"),
                                               {"type": "array", "items": ref("ConciseAttribute")}]},
        },
        "EntityInput": {
            "description": "An entity to create, normalized or concise.",
            "anyOf": [ref("Entity"), ref("EntityConcise")],
        },
        "MergePatchEntity": {
            "type": "object",
            "description": "An entity fragment to merge (clause 5.6.17). The value "
                           "`\"urn:ngsi-ld:null\"` (or `null`) deletes the attribute.",
            "properties": {"id": _URI, "type": types, "@context": ref("LdContext")},
            "additionalProperties": {"anyOf": [ref("ConciseAttribute"), {"const": "urn:ngsi-ld:null"},
                                               {"type": "null"}]},
        },
        "Feature": {
            "type": "object", "required": ["id", "type", "geometry", "properties"],
            "description": "An entity as a GeoJSON Feature (`Accept: application/geo+json`). The "
                           "geometry is the GeoProperty named by `geometryProperty` (`location`).",
            "properties": {"id": _URI, "type": {"const": "Feature"},
                           "geometry": {"oneOf": [ref("GeoJSONGeometry"), {"type": "null"}]},
                           "properties": {"type": "object"}},
        },
        "FeatureCollection": {
            "type": "object", "required": ["type", "features"],
            "properties": {"type": {"const": "FeatureCollection"},
                           "features": {"type": "array", "items": ref("Feature")}},
        },
    }


def _query_schemas() -> dict[str, Schema]:
    return {
        "EntitySelector": {
            "type": "object",
            "properties": {"id": _URI, "idPattern": {"type": "string", "format": "regex",
                                                       "maxLength": 256},
                           "type": {"type": "string", "description": "A type expression, as the "
                                    "`type` query parameter."}},
        },
        "GeoQuery": {
            "type": "object", "required": ["georel", "geometry", "coordinates"],
            "properties": {
                "georel": {"type": "string", "description": f"One of {', '.join(GEORELS)}; near takes "
                           "`;maxDistance==<m>` and/or `;minDistance==<m>`.",
                           "examples": ["near;maxDistance==1000", "within"]},
                "geometry": {"enum": list(GEOMETRY_TYPES)},
                "coordinates": {"oneOf": [{"type": "array"}, {"type": "string"}],
                                "description": "The coordinates member of a GeoJSON geometry."},
                "geoproperty": {**_NAME, "default": "location"},
            },
        },
        "Query": {
            "type": "object", "required": ["type"],
            "description": "The body of POST /entityOperations/query: the URL parameters of "
                           "GET /entities as JSON. `limit`, `offset`, `count`, `options`, `format` "
                           "and `lang` stay URL parameters; `join`, `joinLevel` and `containedBy` "
                           "may be either.",
            "properties": {
                "type": {"const": "Query"},
                "entities": {"type": "array", "items": ref("EntitySelector"), "minItems": 1,
                             "description": "Entity selectors; an entity matching any of them "
                             "is selected."},
                "attrs": {"type": "array", "items": _NAME},
                "q": {"type": "string"}, "scopeQ": {"type": "string"}, "lang": {"type": "string"},
                "geoQ": ref("GeoQuery"),
                "join": {"enum": ["flat", "inline", "@none"],
                         "description": "Linked entity retrieval, as the `join` URL parameter."},
                "joinLevel": {"type": ["integer", "string"], "pattern": "^[0-9]+$", "minimum": 1,
                              "description": "As the `joinLevel` URL parameter."},
                "containedBy": {"type": "array", "items": {"type": "string"},
                                "description": "Entity ids not to fetch again (`join`)."},
            },
        },
    }


def _result_schemas() -> dict[str, Schema]:
    return {
        "ProblemDetails": {
            "type": "object", "required": ["type", "title", "status", "detail"],
            "description": "RFC 7807 problem details with an NGSI-LD error type (clause 5.5.2). "
                           "The NGSI-LD API sends them as `application/json` (clause 5.5.3).",
            "properties": {
                "type": {"type": "string", "format": "uri", "enum": problem_type_uris()},
                "title": {"type": "string"}, "status": {"type": "integer"},
                "detail": {"type": "string"},
                "maxLimit": {"type": "integer", "description": "On TooManyResults: the largest limit."},
                "maxBatchSize": {"type": "integer", "description": "On a too large batch."},
            },
            "additionalProperties": True,
        },
        "BatchEntityError": {
            "type": "object", "required": ["entityId", "error"],
            "properties": {"entityId": {"type": "string"}, "error": ref("ProblemDetails")},
        },
        "BatchOperationResult": {
            "type": "object", "required": ["success", "errors"],
            "description": "207 of a batch: the ids that succeeded and one error per failed entry.",
            "properties": {"success": {"type": "array", "items": _URI},
                           "errors": {"type": "array", "items": ref("BatchEntityError")}},
        },
        "UpdateResult": {
            "type": "object", "required": ["updated", "notUpdated"],
            "properties": {
                "updated": {"type": "array", "items": {"type": "string"}},
                "notUpdated": {"type": "array", "items": {
                    "type": "object", "required": ["attributeName", "reason"],
                    "properties": {"attributeName": {"type": "string"}, "reason": {"type": "string"}}}},
            },
        },
        "EntityIdList": {"type": "array", "items": _URI},
    }


def _discovery_schemas() -> dict[str, Schema]:
    names: Schema = {"type": "array", "items": {"type": "string"}}
    return {
        "EntityTypeList": {
            "type": "object", "required": ["id", "type", "typeList"],
            "properties": {"id": _URI, "type": {"const": "EntityTypeList"}, "typeList": names},
        },
        "EntityType": {
            "type": "object", "required": ["id", "type", "typeName", "attributeNames"],
            "properties": {"id": _URI, "type": {"const": "EntityType"}, "typeName": {"type": "string"},
                           "attributeNames": names},
        },
        "EntityTypeInfo": {
            "type": "object", "required": ["id", "type", "typeName", "entityCount", "attributeDetails"],
            "properties": {"id": _URI, "type": {"const": "EntityTypeInfo"},
                           "typeName": {"type": "string"}, "entityCount": {"type": "integer"},
                           "attributeDetails": {"type": "array", "items": ref("Attribute")}},
        },
        "AttributeList": {
            "type": "object", "required": ["id", "type", "attributeList"],
            "properties": {"id": _URI, "type": {"const": "AttributeList"}, "attributeList": names},
        },
        "Attribute": {
            "type": "object", "required": ["id", "type", "attributeName", "attributeTypes"],
            "description": "Discovery information about one attribute (not an attribute value).",
            "properties": {"id": _URI, "type": {"const": "Attribute"},
                           "attributeName": {"type": "string"},
                           "attributeCount": {"type": "integer"},
                           "attributeTypes": {"type": "array",
                                              "items": {"enum": sorted(ATTRIBUTE_TYPES)}},
                           "typeNames": names},
        },
    }


def _other_schemas() -> dict[str, Schema]:
    return {
        "ContextDocument": {
            "type": "object", "required": ["@context"],
            "properties": {"@context": ref("LdContext")},
        },
        "ContextRecord": {
            "type": "object", "required": ["URL", "localId", "kind", "createdAt"],
            "properties": {"URL": _URI, "localId": {"type": "string"},
                           "kind": {"enum": ["Hosted", "Cached", "ImplicitlyCreated"]},
                           "createdAt": {"oneOf": [_DATE_TIME, {"type": "null"}]}},
        },
        "Health": {
            "type": "object", "required": ["status", "version", "engine"],
            "properties": {"status": {"const": "ok"}, "version": {"type": "string"},
                           "engine": {"type": "string", "examples": ["sqlite", "postgresql"]}},
        },
    }


def component_schemas(settings: Settings) -> dict[str, Schema]:
    """Every schema of ``components.schemas``."""
    schemas: dict[str, Schema] = {}
    for part in (_geometry_schemas(), _attribute_schemas(), _entity_schemas(), _query_schemas(),
                 _result_schemas(), _discovery_schemas(), _other_schemas()):
        schemas.update(part)
    schemas["EntityBatch"] = {"type": "array", "items": ref("EntityInput"), "minItems": 1,
                              "maxItems": settings.max_batch_size}
    schemas["FragmentBatch"] = {"type": "array", "minItems": 1, "maxItems": settings.max_batch_size,
                                "items": {"allOf": [ref("EntityFragment"), {"required": ["id"]}]}}
    schemas["EntityIdBatch"] = {"type": "array", "items": _URI, "minItems": 1,
                                "maxItems": settings.max_batch_size}
    return schemas
