"""Incoming NGSI-LD payloads (normalized or concise) -> the internal form of :mod:`model`.

Validation happens here, completely, before anything is written: a request either passes as a whole
or fails with ``BadRequestData`` naming the offending member, so no partial write is possible.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from cityos.core.problems import BadRequestData
from cityos.data.ngsild.geojson import validate_geojson
from cityos.data.ngsild.model import (
    ATTRIBUTE_TYPES,
    ENTITY_KEYS,
    GEOPROPERTY,
    JSONPROPERTY,
    LANGUAGEPROPERTY,
    LISTPROPERTY,
    LISTRELATIONSHIP,
    LOCATION,
    OBSERVATION_SPACE,
    OPERATION_SPACE,
    PROPERTY,
    RELATIONSHIP,
    VALUE_KEY,
    VOCABPROPERTY,
    Entity,
    Instance,
)
from cityos.data.ngsild.terms import TermMap
from cityos.data.ngsild.times import utc_now as utc_now  # the clock lives in times.py

GEO_TYPES = frozenset({"Point", "MultiPoint", "LineString", "MultiLineString", "Polygon",
                       "MultiPolygon", "GeometryCollection"})
GEO_ATTRIBUTES = frozenset({LOCATION, OBSERVATION_SPACE, OPERATION_SPACE})
# Characters the spec forbids in names (clause 4.6.2), plus whitespace and controls.
_BAD_NAME = re.compile(r"[<>\"'=;()\s\x00-\x1f\x7f\\]")
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:[^\s<>\"{}|\\^`]+$")
_VALUE_KEYS = {v: k for k, v in VALUE_KEY.items() if k not in (PROPERTY, GEOPROPERTY)}
NULL_URI = "urn:ngsi-ld:null"
MAX_NESTING = 16


def parse_datetime(text: Any, member: str) -> str:
    """Normalise an ISO 8601 date-time (any offset, e.g. ``+09:00``) to UTC with milliseconds."""
    if not isinstance(text, str):
        raise BadRequestData(f"{member} must be an ISO 8601 date-time string")
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise BadRequestData(f"{member} is not an ISO 8601 date-time: {text[:64]!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # the spec's times without an offset are UTC
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def check_uri(value: Any, member: str) -> str:
    """``value`` when it is an absolute URI, else ``BadRequestData``."""
    if not isinstance(value, str) or len(value) > 2048 or not _URI.match(value):
        raise BadRequestData(f"{member} must be an absolute URI, got {str(value)[:80]!r}")
    return value


def check_name(name: Any, what: str = "attribute name") -> str:
    """A valid attribute or type name, else ``BadRequestData``."""
    if not isinstance(name, str) or not name or len(name) > 512 or _BAD_NAME.search(name):
        raise BadRequestData(f"invalid {what}: {str(name)[:80]!r}")
    return name


def parse_types(value: Any, tm: TermMap) -> list[str]:
    """Entity type(s) as expanded IRIs, in order, without duplicates."""
    names = value if isinstance(value, list) else [value]
    if not names:
        raise BadRequestData("entity type must not be empty")
    out: list[str] = []
    for name in names:
        iri = tm.expand(check_name(name, "entity type"))
        if iri not in out:
            out.append(iri)
    return out


def parse_entity(body: Any, tm: TermMap, now: str, *, need_id: bool = True,
                 need_type: bool = True) -> Entity:
    """A whole entity from a create / replace / upsert body."""
    if not isinstance(body, dict):
        raise BadRequestData("an entity must be a JSON object")
    entity: Entity = {}
    if need_id or "id" in body:
        entity["id"] = check_uri(body.get("id"), "entity id")
    if need_type or "type" in body:
        if "type" not in body:
            raise BadRequestData("entity type is missing")
        entity["type"] = parse_types(body["type"], tm)
    if "scope" in body:
        entity["scope"] = parse_scope(body["scope"])
    entity["createdAt"] = now
    entity["modifiedAt"] = now
    entity["attrs"] = parse_attributes(body, tm, now)
    return entity


def parse_scope(value: Any) -> list[str]:
    """Scopes are ``/``-separated paths (clause 4.18)."""
    scopes = value if isinstance(value, list) else [value]
    for scope in scopes:
        if not isinstance(scope, str) or not scope.startswith("/") or " " in scope:
            raise BadRequestData(f"invalid scope {str(scope)[:80]!r}")
    return list(scopes)


def parse_attributes(body: dict[str, Any], tm: TermMap, now: str, *,
                     allow_null: bool = False) -> dict[str, list[Instance]]:
    """Every attribute of a fragment: expanded name -> instances (one per ``datasetId``)."""
    attrs: dict[str, list[Instance]] = {}
    for name, raw in body.items():
        if name in ENTITY_KEYS:
            continue
        iri = tm.expand(check_name(name))
        attrs[iri] = parse_attribute(raw, iri, name, tm, now, allow_null=allow_null)
    return attrs


def parse_attribute(raw: Any, iri: str, name: str, tm: TermMap, now: str, *,
                    allow_null: bool = False) -> list[Instance]:
    """All instances of one attribute; a list of attribute objects means several ``datasetId``s."""
    if isinstance(raw, list) and raw and all(_is_attribute_object(x) for x in raw):
        instances = [parse_instance(x, iri, name, tm, now, 0, allow_null) for x in raw]
        seen: set[str | None] = set()
        for inst in instances:
            key = inst.get("datasetId")
            if key in seen:
                raise BadRequestData(f"attribute {name!r} has two instances with datasetId {key!r}")
            seen.add(key)
        return instances
    return [parse_instance(raw, iri, name, tm, now, 0, allow_null)]


def _type_of(value: dict[str, Any]) -> str | None:
    """The ``type`` member when it is a string (hostile bodies put lists or objects there)."""
    kind = value.get("type")
    return kind if isinstance(kind, str) else None


def _is_attribute_object(value: Any) -> bool:
    return isinstance(value, dict) and (
        _type_of(value) in ATTRIBUTE_TYPES or any(k in value for k in VALUE_KEY.values()))


def parse_instance(raw: Any, iri: str, name: str, tm: TermMap, now: str, depth: int,
                   allow_null: bool = False) -> Instance:
    """One attribute instance in normalized or concise form."""
    if depth > MAX_NESTING:
        raise BadRequestData(f"attribute {name!r} nests sub-attributes too deeply")
    if raw is None or raw == NULL_URI:
        if allow_null:
            return {"type": PROPERTY, "value": NULL_URI}
        raise BadRequestData(f"attribute {name!r} has a null value")
    if not isinstance(raw, dict) or not _is_attribute_object(raw):
        if isinstance(raw, dict) and _type_of(raw) in GEO_TYPES:
            raw = {"type": GEOPROPERTY, "value": raw}
        elif isinstance(raw, dict) and "type" in raw and _type_of(raw) not in GEO_TYPES:
            raise BadRequestData(f"attribute {name!r} has unknown type {str(raw['type'])[:40]!r}")
        else:
            raw = {"type": PROPERTY, "value": raw}  # concise / simplified value
    kind = raw.get("type") or _infer_kind(raw, iri)
    if not isinstance(kind, str) or kind not in ATTRIBUTE_TYPES:
        raise BadRequestData(f"attribute {name!r} has unknown type {str(kind)[:40]!r}")
    instance: Instance = {"type": kind}
    value_key = VALUE_KEY[kind]
    if value_key not in raw:
        raise BadRequestData(f"attribute {name!r} of type {kind} has no {value_key!r} member")
    value = raw[value_key]
    if value is None and not allow_null:
        raise BadRequestData(f"attribute {name!r} has a null {value_key!r}")
    instance[value_key] = _check_value(kind, value, name, tm, allow_null)
    if iri in GEO_ATTRIBUTES and kind != GEOPROPERTY:
        raise BadRequestData(f"attribute {name!r} must be a GeoProperty")
    for key, member in raw.items():
        if key in ("type", value_key, "createdAt", "modifiedAt", "@context", "instanceId"):
            continue
        if key == "observedAt":
            instance["observedAt"] = parse_datetime(member, f"{name}.observedAt")
        elif key == "unitCode":
            if not isinstance(member, str) or not member:
                raise BadRequestData(f"{name}.unitCode must be a non-empty string")
            instance["unitCode"] = member
        elif key == "datasetId":
            instance["datasetId"] = check_uri(member, f"{name}.datasetId")
        elif key == "objectType" and kind in (RELATIONSHIP, LISTRELATIONSHIP):
            instance["objectType"] = tm.expand(check_name(member, "objectType"))
        elif key in VALUE_KEY.values() or key == "lang":
            raise BadRequestData(f"attribute {name!r} of type {kind} must not have {key!r}")
        else:
            sub_iri = tm.expand(check_name(key, "sub-attribute name"))
            instance.setdefault("sub", {})[sub_iri] = parse_instance(
                member, sub_iri, key, tm, now, depth + 1, allow_null)
    instance["createdAt"] = now
    instance["modifiedAt"] = now
    return instance


def _infer_kind(raw: dict[str, Any], iri: str) -> str:
    for key, kind in _VALUE_KEYS.items():
        if key in raw:
            return kind
    value = raw.get("value")
    if isinstance(value, dict) and _type_of(value) in GEO_TYPES and iri in GEO_ATTRIBUTES:
        return GEOPROPERTY
    return PROPERTY


def _check_value(kind: str, value: Any, name: str, tm: TermMap, allow_null: bool) -> Any:
    if allow_null and value == NULL_URI:
        return value
    if kind == PROPERTY:
        if isinstance(value, dict) and value.get("@type") and "@value" in value:
            return value  # a typed literal such as {"@type": "DateTime", "@value": "..."}
        return value
    if kind == GEOPROPERTY:
        validate_geojson(value)
        return value
    if kind == RELATIONSHIP:
        if isinstance(value, list):
            return [check_uri(v, f"{name}.object") for v in value]
        return check_uri(value, f"{name}.object")
    if kind == LISTRELATIONSHIP:
        if not isinstance(value, list):
            raise BadRequestData(f"{name}.objectList must be an array")
        return [check_uri(v.get("object") if isinstance(v, dict) else v, f"{name}.objectList")
                for v in value]
    if kind == LANGUAGEPROPERTY:
        if not isinstance(value, dict) or not value:
            raise BadRequestData(f"{name}.languageMap must be a non-empty object")
        for tag, text in value.items():
            if not isinstance(tag, str) or not re.fullmatch(r"[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*|@none", tag):
                raise BadRequestData(f"{name}.languageMap has an invalid language tag {str(tag)[:20]!r}")
            if not isinstance(text, str) and not (isinstance(text, list) and
                                                  all(isinstance(t, str) for t in text)):
                raise BadRequestData(f"{name}.languageMap[{tag}] must be a string")
        return value
    if kind == VOCABPROPERTY:
        if isinstance(value, list):
            return [tm.expand(check_name(v, "vocab")) for v in value]
        return tm.expand(check_name(value, "vocab"))
    if kind == LISTPROPERTY:
        if not isinstance(value, list):
            raise BadRequestData(f"{name}.valueList must be an array")
        return value
    if kind == JSONPROPERTY:
        return value
    raise BadRequestData(f"attribute {name!r}: unsupported type {kind}")  # pragma: no cover
