"""From file bytes (CSV, GeoJSON) or JSON records to a :class:`Prepared` list of entities.

Preparing is pure: it decodes, maps and validates every row, collecting rejections, and writes
nothing.  Writing is the sinks' job (sinks.py), so the same prepared entities can go to the local
broker or to a remote server.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from cityos.ingest.importers.decode import decode, extra_cells, read_table
from cityos.ingest.importers.jp_datasets import Dataset, dataset_mapping, detect, find_dataset
from cityos.ingest.importers.mapping import Mapping, MappingError
from cityos.ingest.importers.report import ImportReport, Rejection
from cityos.ingest.importers.values import Rejected

FEATURE_ID = "__feature_id__"


@dataclass
class Prepared:
    """Entities ready to write (with their row numbers) and the report so far."""

    report: ImportReport
    mapping: Mapping
    entities: list[tuple[int, dict[str, Any]]] = field(default_factory=list)


def _choose_dataset(dataset: str | None, headers: list[str], filename: str) -> Dataset | None:
    if dataset:
        found = find_dataset(dataset)
        if found is None:
            raise MappingError(f"unknown dataset {dataset!r}; use its number (01-14), its name "
                               "(e.g. 指定緊急避難場所一覧) or its slug (e.g. EvacuationSpace)")
        return found
    return detect(headers, filename)


def _map_all(prepared: Prepared, records: list[tuple[int, dict[str, Any], Any]]) -> Prepared:
    seen: dict[str, int] = {}
    for row, record, geometry in records:
        try:
            entity = prepared.mapping.entity(record, geometry)
        except Rejected as reason:
            prepared.report.rejected.append(Rejection(row, str(reason)))
            continue
        first = seen.setdefault(entity["id"], row)
        if first != row:
            prepared.report.rejected.append(
                Rejection(row, f"duplicate id (also in row {first})", entity["id"]))
            continue
        prepared.entities.append((row, entity))
    prepared.report.rows = len(records)
    return prepared


def prepare_csv(data: bytes, *, filename: str = "", encoding: str | None = None,
                delimiter: str | None = None, dataset: str | None = None,
                mapping: Mapping | None = None, code: str | None = None) -> Prepared:
    """A CSV file: a recommended dataset (named or detected) or any CSV with a ``mapping``."""
    table = read_table(data, encoding, delimiter)
    found = None if mapping else _choose_dataset(dataset, table.header, filename)
    if mapping is None:
        if found is None:
            raise MappingError("this CSV is not one of the recommended datasets; name the dataset "
                               "(--dataset) or give a mapping file (--mapping)")
        mapping = dataset_mapping(found, table.header, code)
    report = ImportReport(source=filename, format="csv", entity_type=mapping.entity_type,
                          dataset=found.name if found else None, encoding=table.encoding,
                          delimiter=table.delimiter)
    records: list[tuple[int, dict[str, Any], Any]] = []
    for row, cells in table.rows:
        try:
            extra_cells(cells, table.header)
        except Rejected as reason:
            report.rejected.append(Rejection(row, str(reason)))
            continue
        records.append((row, dict(zip(table.header, cells, strict=False)), None))
    prepared = _map_all(Prepared(report, mapping), records)
    prepared.report.rows = len(table.rows)
    return prepared


def prepare_geojson(data: bytes | Any, *, filename: str = "", mapping: Mapping | None = None,
                    entity_type: str | None = None, id_property: str | None = None,
                    dataset: str | None = None, code: str | None = None) -> Prepared:
    """A GeoJSON FeatureCollection: properties become attributes, the geometry ``location``."""
    document = data
    if isinstance(data, (bytes, bytearray)):
        text, _ = decode(bytes(data))
        try:
            document = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise MappingError(f"the file is not valid JSON: {exc}") from None
    if not isinstance(document, dict) or document.get("type") != "FeatureCollection" \
            or not isinstance(document.get("features"), list):
        raise MappingError("a GeoJSON import needs a FeatureCollection with a features array")
    features = document["features"]
    keys = list(dict.fromkeys(k for f in features if isinstance(f, dict)
                              and isinstance(f.get("properties"), dict) for k in f["properties"]))
    found = None
    if mapping is None:
        found = _choose_dataset(dataset, keys, filename) if (dataset or not entity_type) else None
        if found is not None:
            mapping = dataset_mapping(found, keys, code)
        elif entity_type:
            template = f"urn:ngsi-ld:{entity_type}:{{{id_property or FEATURE_ID}}}"
            mapping = Mapping(entity_type=entity_type, id_template=template, keep_other=True)
        else:
            raise MappingError("name the entity type (--type) or give a mapping file (--mapping)")
    report = ImportReport(source=filename, format="geojson", entity_type=mapping.entity_type,
                          dataset=found.name if found else None)
    records: list[tuple[int, dict[str, Any], Any]] = []
    for number, feature in enumerate(features, start=1):
        if not isinstance(feature, dict) or feature.get("type") != "Feature":
            report.rejected.append(Rejection(number, "not a GeoJSON Feature"))
            continue
        properties = feature.get("properties") or {}
        if not isinstance(properties, dict):
            report.rejected.append(Rejection(number, "the feature's properties are not an object"))
            continue
        record = dict(properties)
        if feature.get("id") is not None:
            record[FEATURE_ID] = str(feature["id"])
        records.append((number, record, feature.get("geometry")))
    prepared = _map_all(Prepared(report, mapping), records)
    prepared.report.rows = len(features)
    return prepared


def flatten(record: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested objects as dotted keys (``{"geo": {"lat": 1}}`` → ``{"geo.lat": 1}``)."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def prepare_records(items: list[Any], mapping: Mapping, source: str = "") -> Prepared:
    """JSON objects (a REST API's answer) mapped with ``mapping``; nested keys are dotted."""
    report = ImportReport(source=source, format="json", entity_type=mapping.entity_type)
    records: list[tuple[int, dict[str, Any], Any]] = []
    for number, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            report.rejected.append(Rejection(number, "not a JSON object"))
            continue
        records.append((number, flatten(item), None))
    prepared = _map_all(Prepared(report, mapping), records)
    prepared.report.rows = len(items)
    return prepared
