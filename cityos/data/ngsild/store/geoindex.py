"""Bounding boxes of an entity's GeoProperties, for the engines' spatial prefilter indexes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from cityos.data.ngsild.model import GEOPROPERTY, Entity

Box = tuple[float, float, float, float]  # minx, miny, maxx, maxy


def geo_boxes(entity: Entity) -> Iterator[tuple[str, Box]]:
    """(attribute IRI, bbox) for every GeoProperty instance of the entity (top level only)."""
    for attr, instances in entity["attrs"].items():
        for instance in instances:
            if instance.get("type") == GEOPROPERTY:
                box = geometry_box(instance.get("value"))
                if box is not None:
                    yield attr, box


def geometry_box(geometry: Any) -> Box | None:
    """The bbox of a GeoJSON geometry, computed without building a shape (hot path on writes)."""
    if not isinstance(geometry, dict):
        return None
    if geometry.get("type") == "GeometryCollection":
        boxes = [b for g in geometry.get("geometries", []) if (b := geometry_box(g)) is not None]
        if not boxes:
            return None
        return (min(b[0] for b in boxes), min(b[1] for b in boxes),
                max(b[2] for b in boxes), max(b[3] for b in boxes))
    xs: list[float] = []
    ys: list[float] = []
    _collect(geometry.get("coordinates"), xs, ys)
    if not xs:
        return None
    return min(xs), min(ys), max(xs), max(ys)


def _collect(coords: Any, xs: list[float], ys: list[float]) -> None:
    if isinstance(coords, list) and coords and isinstance(coords[0], (int, float)):
        if len(coords) >= 2:
            xs.append(float(coords[0]))
            ys.append(float(coords[1]))
        return
    if isinstance(coords, list):
        for item in coords:
            _collect(item, xs, ys)
