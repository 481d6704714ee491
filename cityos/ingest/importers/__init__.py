"""ED-DP-1 / ED-DT-1  importers: CSV (any encoding, Japan's recommended datasets or a mapping file)
and GeoJSON into NGSI-LD entities, written through the broker's batch-upsert action.

Public interface: prepare a file (:func:`prepare_file`, :func:`prepare_csv`,
:func:`prepare_geojson`, :func:`prepare_records`), then write it to a :class:`BrokerSink` (this
process's broker) or an :class:`HttpSink` (a running server) with :func:`run_import`.
"""

from __future__ import annotations

from cityos.ingest.importers.decode import UnreadableFile, normalise_encoding
from cityos.ingest.importers.jp_datasets import (
    CONTEXT_PATH,
    DATASETS,
    Dataset,
    context_document,
    find_dataset,
)
from cityos.ingest.importers.mapping import Mapping, MappingError, load_mapping, mapping_from_dict
from cityos.ingest.importers.report import ImportReport, Rejection
from cityos.ingest.importers.routes import ROUTES
from cityos.ingest.importers.sinks import BrokerSink, ChunkResult, HttpSink, Sink, run_import
from cityos.ingest.importers.sources import (
    Prepared,
    prepare_csv,
    prepare_geojson,
    prepare_records,
)

UNIMPORTABLE = (UnreadableFile, MappingError)
"""The errors that mean "this input cannot be imported at all" (a 400 / exit code 2)."""


def guess_format(filename: str, data: bytes) -> str:
    """``geojson`` for ``.geojson``/``.json`` files or JSON content, else ``csv``."""
    lower = filename.lower()
    if lower.endswith((".geojson", ".json")):
        return "geojson"
    head = data[:64].lstrip(b"\xef\xbb\xbf \t\r\n")
    return "geojson" if head.startswith(b"{") else "csv"


def prepare_file(data: bytes, *, filename: str = "", format: str | None = None,
                 encoding: str | None = None, delimiter: str | None = None,
                 dataset: str | None = None, mapping: Mapping | None = None,
                 code: str | None = None, entity_type: str | None = None,
                 id_property: str | None = None) -> Prepared:
    """Prepare a CSV or GeoJSON file (``format`` guessed from the name or content)."""
    kind = format or guess_format(filename, data)
    if kind == "geojson":
        return prepare_geojson(data, filename=filename, mapping=mapping, entity_type=entity_type,
                               id_property=id_property, dataset=dataset, code=code)
    if kind != "csv":
        raise MappingError(f"unknown format {kind!r}; use csv or geojson")
    return prepare_csv(data, filename=filename, encoding=encoding, delimiter=delimiter,
                       dataset=dataset, mapping=mapping, code=code)


__all__ = [
    "CONTEXT_PATH",
    "DATASETS",
    "ROUTES",
    "UNIMPORTABLE",
    "BrokerSink",
    "ChunkResult",
    "Dataset",
    "HttpSink",
    "ImportReport",
    "Mapping",
    "MappingError",
    "Prepared",
    "Rejection",
    "Sink",
    "UnreadableFile",
    "context_document",
    "find_dataset",
    "guess_format",
    "load_mapping",
    "mapping_from_dict",
    "normalise_encoding",
    "prepare_csv",
    "prepare_file",
    "prepare_geojson",
    "prepare_records",
    "run_import",
]
