"""How records (CSV rows, GeoJSON properties, JSON objects) become NGSI-LD entities.

A :class:`Mapping` says which entity type to write, how to build each entity id from the record
(a template such as ``urn:ngsi-ld:BusStop:{stop_id}``), which field becomes which attribute with
which kind of value, and where the coordinates are.  The recommended-dataset importer builds one
from the dataset's model; for any other file the operator writes one (YAML or JSON)::

    type: BusStop
    id: "urn:ngsi-ld:BusStop:{stop_id}"
    context: https://example.jp/context.jsonld   # optional; else the core context
    latitude: stop_lat
    longitude: stop_lon
    attributes:
      stop_name: name                 # field: attribute (text)
      capacity: {name: capacity, kind: integer}
    keep_other_columns: true          # unmapped fields kept under their own names (kind auto)
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from cityos.ingest.importers.values import (
    KINDS,
    Rejected,
    convert,
    coordinates,
    is_empty,
    municipality_code,
)

MISSING_CODE = "__code__"   # id placeholder of a dataset file without a code column
_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")
_BAD_NAME_CHARS = re.compile(r"[<>\"'=;\\\x00-\x1f\x7f]")


class MappingError(ValueError):
    """A mapping file or option that cannot be used."""


def attribute_name(column: str) -> str:
    """A header turned into a valid NGSI-LD attribute name.

    NGSI-LD forbids ``( ) < > " ' = ;`` and white space in names; Japanese headers such as
    ``料金(基本)`` get full-width parentheses (``料金（基本）``), spaces are dropped, the rest ``_``.
    """
    name = "".join(column.split()).replace("(", "（").replace(")", "）")
    name = _BAD_NAME_CHARS.sub("_", name)
    if name in ("id", "type", "@context", "location") or not name:
        name = f"{name or 'column'}_"
    return name[:256]


@dataclass
class Field:
    """One source field written as ``attribute`` with values of ``kind``."""

    attribute: str
    kind: str = "text"


@dataclass
class Mapping:
    """The recipe for turning one record into one entity."""

    entity_type: str
    id_template: str
    fields: dict[str, Field] = field(default_factory=dict)
    latitude: str | None = None
    longitude: str | None = None
    keep_other: bool = False
    context: Any = None              # a context URL or object the attribute names are terms of
    code_fields: frozenset[str] = frozenset()   # id parts normalised as municipality codes

    def id_fields(self) -> list[str]:
        """The fields the id template names."""
        return _PLACEHOLDER.findall(self.id_template)

    def entity_id(self, record: dict[str, Any]) -> str:
        """The entity id for ``record``; ``Rejected`` when a field it needs is empty."""
        def part(match: re.Match[str]) -> str:
            name = match[1]
            value = record.get(name)
            if name == MISSING_CODE:
                raise Rejected("missing id: the file has no local government code column "
                               "(give one with --code)")
            if is_empty(value):
                raise Rejected(f"missing id: column {name} is empty")
            text = str(value).strip()
            if name in self.code_fields:
                text = municipality_code(text)
            return quote(text, safe="-._~")
        return _PLACEHOLDER.sub(part, self.id_template)

    def entity(self, record: dict[str, Any], geometry: dict[str, Any] | None = None) -> dict[str, Any]:
        """The normalized NGSI-LD entity for ``record``; ``Rejected`` with the reason otherwise."""
        entity: dict[str, Any] = {"id": self.entity_id(record), "type": self.entity_type}
        # the location first: a bad coordinate is reported as such, not as a bad number
        location = self._location(record, geometry)
        for column, value in record.items():
            spec = self.fields.get(column)
            if spec is None and column.startswith("__"):
                continue         # helper fields such as the GeoJSON feature id
            if spec is None:
                if not self.keep_other or column in (self.latitude, self.longitude):
                    continue
                spec = Field(attribute_name(column), "auto")
            if is_empty(value):
                continue
            entity[spec.attribute] = {"type": "Property", "value": convert(value, spec.kind, column)}
        if location is not None:
            entity["location"] = {"type": "GeoProperty", "value": location}
        return entity


    def _location(self, record: dict[str, Any], geometry: Any) -> dict[str, Any] | None:
        if geometry is not None:
            return check_geometry(geometry)
        if self.latitude and self.longitude:
            point = coordinates(record.get(self.latitude), record.get(self.longitude))
            if point is not None:
                return {"type": "Point", "coordinates": list(point)}
        return None


GEOMETRY_TYPES = {"Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon"}


def check_geometry(geometry: Any) -> dict[str, Any]:
    """A GeoJSON geometry the broker can store; ``Rejected`` otherwise."""
    if not isinstance(geometry, dict) or geometry.get("type") not in GEOMETRY_TYPES:
        kind = geometry.get("type") if isinstance(geometry, dict) else type(geometry).__name__
        raise Rejected(f"bad geometry: {str(kind)[:30]!r} is not a GeoJSON geometry")
    if geometry["type"] == "Point":
        coords = geometry.get("coordinates")
        if not isinstance(coords, list) or len(coords) < 2:
            raise Rejected("bad coordinates: a Point needs [longitude, latitude]")
        coordinates(coords[1], coords[0])
    return {"type": geometry["type"], "coordinates": geometry.get("coordinates")}


def load_mapping(path: Path) -> Mapping:
    """Read a mapping file (``.yaml``/``.yml`` or ``.json``)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise MappingError(f"cannot read the mapping file {path}: {exc.strerror}") from None
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as exc:  # json's ValueError and yaml.YAMLError share no narrower base
        raise MappingError(f"{path.name} is not valid YAML/JSON: {str(exc)[:200]}") from None
    return mapping_from_dict(data)


def mapping_from_dict(data: Any) -> Mapping:
    """A :class:`Mapping` from its JSON form (as documented above)."""
    if not isinstance(data, dict):
        raise MappingError("a mapping is an object with at least 'type' and 'id'")
    entity_type, template = data.get("type"), data.get("id")
    if not isinstance(entity_type, str) or not entity_type:
        raise MappingError("the mapping needs 'type': the entity type to write")
    if not isinstance(template, str) or not _PLACEHOLDER.search(template):
        raise MappingError("the mapping needs 'id': a template naming at least one {field}, "
                           "e.g. urn:ngsi-ld:BusStop:{stop_id}")
    fields: dict[str, Field] = {}
    attributes = data.get("attributes") or {}
    if not isinstance(attributes, dict):
        raise MappingError("'attributes' maps field names to attribute names")
    for column, spec in attributes.items():
        if isinstance(spec, str):
            fields[str(column)] = Field(spec)
        elif isinstance(spec, dict) and isinstance(spec.get("name", column), str):
            kind = spec.get("kind", "text")
            if kind not in KINDS:
                raise MappingError(f"attribute {column}: kind {kind!r} is not one of {KINDS}")
            fields[str(column)] = Field(spec.get("name", str(column)), kind)
        else:
            raise MappingError(f"attribute {column}: give a name or {{name, kind}}")
    for key in ("latitude", "longitude"):
        if data.get(key) is not None and not isinstance(data[key], str):
            raise MappingError(f"'{key}' names the field holding the {key}")
    return Mapping(entity_type=entity_type, id_template=template, fields=fields,
                   latitude=data.get("latitude"), longitude=data.get("longitude"),
                   keep_other=bool(data.get("keep_other_columns", False)),
                   context=data.get("context"))
