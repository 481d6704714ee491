"""NGSI v2 request bodies -> the broker's internal entity form (``cityos.data.ngsild.model``).

Attribute ``type`` -> NGSI-LD attribute type (ADR 0008):

* ``geo:json``, ``geo:point``, ``geo:line``, ``geo:polygon``, ``geo:box`` -> GeoProperty (GeoJSON);
* ``Relationship`` with a string value that is a valid v2 id -> Relationship (object mapped to its
  NGSI-LD id);
* anything else (``Number``, ``Text``, ``Boolean``, ``DateTime``, ``StructuredValue``, ``None``,
  user-defined types) -> Property; ``DateTime`` values are checked and normalised to UTC.

The v2 type itself is kept in the instance under ``v2type`` (a key the NGSI-LD renderer does not
show), so a v2 read returns the type that was written.  Metadata become sub-attributes, except
``unitCode`` and ``observedAt`` which are NGSI-LD's own members of an attribute.
"""

from __future__ import annotations

from typing import Any

from cityos.data.ngsild import TermMap
from cityos.data.ngsild.model import Entity, Instance
from cityos.data.ngsild.payload import parse_datetime
from cityos.data.ngsiv2 import geo
from cityos.data.ngsiv2.errors import bad_request
from cityos.data.ngsiv2.mapping import DEFAULT_TYPE, check_identifier, entity_id, expand_type, to_ld_id

V2TYPE = "v2type"
# names a v2 caller may not use for attributes (Orion's "Attribute names restrictions")
RESERVED_ATTRS = frozenset({"id", "type", "geo:distance", "dateCreated", "dateModified",
                            "dateExpires", "*"})
RESERVED_METADATA = frozenset({"dateCreated", "dateModified", "previousValue", "actionType", "*"})
# metadata that are members of an NGSI-LD attribute rather than sub-attributes
NATIVE_METADATA = {"unitCode": "Text", "observedAt": "DateTime"}
_ATTR_KEYS = frozenset({"type", "value", "metadata"})


def infer_type(value: Any) -> str:
    """Orion's default attribute type for a value whose type was not given."""
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, (int, float)):
        return "Number"
    if isinstance(value, str):
        return "Text"
    if value is None:
        return "None"
    return "StructuredValue"


def _datetime(value: Any, what: str) -> str:
    if isinstance(value, str) and len(value) == 10:
        value += "T00:00:00Z"      # a bare date is its midnight UTC
    try:
        return parse_datetime(value, what)
    except Exception:
        raise bad_request(f"{what}: date has invalid format") from None


def _relationship_target(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        return to_ld_id(check_identifier(value, "relationship"))
    except Exception:
        return None


def to_instance(name: str, v2type: str, value: Any, now: str, what: str) -> Instance:
    """One attribute (or metadata) value of ``v2type`` as an internal instance."""
    instance: Instance
    if v2type in geo.GEO_TYPES:
        instance = {"type": "GeoProperty", "value": geo.to_geojson(v2type, value, what)}
    elif v2type == "Relationship" and (target := _relationship_target(value)) is not None:
        instance = {"type": "Relationship", "object": target}
    elif v2type == "DateTime":
        instance = {"type": "Property", "value": _datetime(value, what)}
    else:
        instance = {"type": "Property", "value": value}
    instance[V2TYPE] = v2type
    instance["createdAt"] = instance["modifiedAt"] = now
    return instance


def parse_attribute(name: str, raw: Any, tm: TermMap, now: str, *, key_values: bool) -> Instance:
    """One v2 attribute (``{"type", "value", "metadata"}`` or a bare keyValues value)."""
    check_attr_name(name, tm)
    if key_values:
        return to_instance(name, infer_type(raw), raw, now, f"attribute {name}")
    if not isinstance(raw, dict):
        raise bad_request(f"attribute {name} must be a JSON object, unless keyValues option is used")
    unknown = set(raw) - _ATTR_KEYS
    if unknown:
        raise bad_request(f"unrecognized property for context attribute {name}: "
                          f"{sorted(unknown)[0][:40]}")
    value = raw.get("value")
    v2type = raw.get("type")
    v2type = infer_type(value) if v2type is None else check_identifier(v2type, "attribute type")
    instance = to_instance(name, v2type, value, now, f"attribute {name}")
    metadata = raw.get("metadata")
    if metadata is not None:
        instance.update(parse_metadata(metadata, tm, now, name))
    return instance


def parse_metadata(raw: Any, tm: TermMap, now: str, attr: str) -> dict[str, Any]:
    """The instance members (``sub``, ``unitCode``, ``observedAt``) for a v2 ``metadata`` object."""
    if not isinstance(raw, dict):
        raise bad_request(f"metadata of attribute {attr} must be a JSON object")
    out: dict[str, Any] = {}
    subs: dict[str, Instance] = {}
    for name, meta in raw.items():
        check_identifier(name, "metadata name", tm)
        if name in RESERVED_METADATA:
            raise bad_request(f"metadata name {name} is reserved")
        if not isinstance(meta, dict) or set(meta) - {"type", "value"}:
            raise bad_request(f"metadata {name} of attribute {attr} must be an object with type "
                              "and value")
        value = meta.get("value")
        mtype = meta.get("type")
        mtype = infer_type(value) if mtype is None else check_identifier(mtype, "metadata type")
        if name in NATIVE_METADATA and mtype == NATIVE_METADATA[name] and isinstance(value, str):
            out[name] = _datetime(value, f"metadata {name}") if mtype == "DateTime" else value
            continue
        sub = to_instance(name, mtype, value, now, f"metadata {name}")
        sub.pop("createdAt")
        sub.pop("modifiedAt")
        subs[tm.expand(name)] = sub
    if subs:
        out["sub"] = subs
    return out


def check_attr_name(name: str, tm: TermMap | None = None) -> str:
    """A valid, non-reserved attribute name (``tm``: terms of the v2 face's @context are valid
    whatever their characters, see :func:`check_identifier`)."""
    check_identifier(name, "attribute name", tm)
    if name in RESERVED_ATTRS:
        raise bad_request(f"attribute name {name} is reserved")
    return name


def parse_attributes(body: Any, tm: TermMap, now: str, *, key_values: bool,
                     allow_id_type: bool = False) -> dict[str, Instance]:
    """The attributes of a v2 body as expanded IRI -> instance."""
    if not isinstance(body, dict):
        raise bad_request("the body must be a JSON object")
    attrs: dict[str, Instance] = {}
    for name, raw in body.items():
        if allow_id_type and name in ("id", "type"):
            continue
        if name in ("id", "type"):
            raise bad_request(f"{name} is not allowed in an attributes payload")
        attrs[tm.expand(check_attr_name(name, tm))] = parse_attribute(name, raw, tm, now,
                                                                  key_values=key_values)
    return attrs


def parse_entity(body: Any, tm: TermMap, now: str, *, key_values: bool,
                 scope: list[str] | None) -> Entity:
    """A whole v2 entity (``id``, optional ``type`` = ``Thing``, attributes)."""
    if not isinstance(body, dict):
        raise bad_request("the body must be a JSON object")
    if "id" not in body:
        raise bad_request("entity id is missing")
    ld_id = entity_id(body["id"])
    ld_type = expand_type(tm, body.get("type", DEFAULT_TYPE))
    entity: Entity = {"id": ld_id, "type": [ld_type], "createdAt": now, "modifiedAt": now,
                      "attrs": {iri: [inst] for iri, inst in
                                parse_attributes(body, tm, now, key_values=key_values,
                                                 allow_id_type=True).items()}}
    if scope:
        entity["scope"] = scope
    return entity
