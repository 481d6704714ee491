"""Turning other systems' answers into NGSI-LD entities: NGSI v2 entities and JSON selectors."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:\S+$")
_REF = re.compile(r"^ref[A-Z]")


def v2_entity(entity: dict[str, Any]) -> dict[str, Any]:
    """An NGSI v2 entity (normalized representation) as an NGSI-LD entity.

    Ids that are not URIs become ``urn:ngsi-ld:{type}:{id}``; ``geo:json`` and ``geo:point``
    become GeoProperties, ``Relationship`` / ``ref*`` attributes Relationships, ``DateTime``
    typed literals; the metadata ``unitCode`` and ``TimeInstant`` become ``unitCode`` and
    ``observedAt``.  Other metadata is dropped.
    """
    entity_type = str(entity.get("type") or "Thing")
    raw_id = str(entity.get("id"))
    out: dict[str, Any] = {"id": raw_id if _URI.match(raw_id)
                           else f"urn:ngsi-ld:{quote(entity_type, safe='')}:{quote(raw_id, safe='')}",
                           "type": entity_type}
    for name, attr in entity.items():
        if name in ("id", "type") or not isinstance(attr, dict):
            continue
        converted = _v2_attribute(name, attr)
        if converted is not None:
            out[name] = converted
    return out


def _v2_attribute(name: str, attr: dict[str, Any]) -> dict[str, Any] | None:
    kind, value = attr.get("type"), attr.get("value")
    if value is None or value == "":
        return None
    if kind == "geo:json" and isinstance(value, dict):
        out: dict[str, Any] = {"type": "GeoProperty", "value": value}
    elif kind == "geo:point" and isinstance(value, str) and "," in value:
        lat, lon = (float(p) for p in value.split(",", 1))
        out = {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [lon, lat]}}
    elif (kind in ("Relationship", "Reference") or _REF.match(name)) and isinstance(value, str) \
            and _URI.match(value):
        out = {"type": "Relationship", "object": value}
    elif kind == "DateTime" and isinstance(value, str):
        out = {"type": "Property", "value": {"@type": "DateTime", "@value": value}}
    else:
        out = {"type": "Property", "value": value}
    metadata = attr.get("metadata") or {}
    unit = metadata.get("unitCode", {}).get("value") if isinstance(metadata, dict) else None
    if isinstance(unit, str) and out["type"] == "Property":
        out["unitCode"] = unit
    stamp = metadata.get("TimeInstant", {}).get("value") if isinstance(metadata, dict) else None
    if isinstance(stamp, str):
        out["observedAt"] = stamp
    return out


_STEP = re.compile(r"\.([^.\[\]]+)|\[(\*|-?\d+)\]|\[['\"]([^'\"]+)['\"]\]")


def select(document: Any, selector: str | None) -> list[Any]:
    """The items ``selector`` picks out of ``document``.

    A small JSONPath subset: ``$`` (the document), ``.key``, ``['key']``, ``[n]`` and ``[*]``
    (every element); a selector that ends on an array yields its elements, on an object that
    object.  ``items`` and ``data.items`` are accepted without the leading ``$.``.
    """
    path = (selector or "$").strip()
    if not path.startswith("$"):
        path = "$." + path
    current: list[Any] = [document]
    position = 1
    while position < len(path):
        match = _STEP.match(path, position)
        if match is None:
            raise ValueError(f"cannot read the selector {selector!r} at {path[position:]!r}")
        key, index = match.group(1) or match.group(3), match.group(2)
        nxt: list[Any] = []
        for node in current:
            if key is not None and isinstance(node, dict) and key in node:
                nxt.append(node[key])
            elif index == "*" and isinstance(node, list):
                nxt.extend(node)
            elif index == "*" and isinstance(node, dict):
                nxt.extend(node.values())
            elif index not in (None, "*") and isinstance(node, list):
                with_index = int(index)
                if -len(node) <= with_index < len(node):
                    nxt.append(node[with_index])
        current = nxt
        position = match.end()
    if len(current) == 1 and isinstance(current[0], list):
        return list(current[0])
    return current
