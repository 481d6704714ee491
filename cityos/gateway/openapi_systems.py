"""OpenAPI 3.1 paths of external systems (``/assets/v1/systems``, AS-SY-1) and the operator
import endpoint (``/ingest/v1/imports``, ED-DP-1).

:func:`systems_paths` returns ``paths`` entries whose operationIds are the Starlette route names of
``cityos.assets.systems.ROUTES`` and ``cityos.ingest.importers.ROUTES``.  Errors are RFC 7807
problem details.  Examples are Kobe's (神戸市).
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]
SYSTEMS_TAG, IMPORT_TAG = "External systems", "Import"
JSON = "application/json"

_KINDS = ["orion-v2", "ngsi-ld", "rest-json", "csv-url", "geojson-url"]
_OPTIONS: Schema = {"type": "object", "description": (
    "Per kind. orion-v2: service, servicePath, type, q, idPattern, pageSize. ngsi-ld: tenant, "
    "type (required), q, context, pageSize. rest-json: selector (JSONPath subset such as "
    "`$.data.items[*]`), mapping (required). csv-url: dataset, mapping, encoding, delimiter, "
    "code. geojson-url: dataset, mapping, type, idProperty, code."),
    "additionalProperties": True}
SYSTEM: Schema = {"type": "object", "required": ["kind", "url"], "properties": {
    "id": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"},
    "name": {"type": "string"}, "description": {"type": "string"},
    "kind": {"enum": _KINDS}, "url": {"type": "string", "format": "uri"},
    "interval": {"type": "number", "minimum": 1, "default": 3600,
                 "description": "Seconds between pulls."},
    "enabled": {"type": "boolean", "default": True}, "options": _OPTIONS,
    "createdAt": {"type": "string", "format": "date-time", "readOnly": True},
    "lastRunAt": {"type": ["string", "null"], "format": "date-time", "readOnly": True},
    "nextRunAt": {"type": "string", "format": "date-time", "readOnly": True},
    "status": {"enum": ["never", "ok", "partial", "error"], "readOnly": True},
    "lastError": {"type": ["string", "null"], "readOnly": True},
    "runs": {"type": "integer", "readOnly": True},
    "counts": {"type": ["object", "null"], "readOnly": True, "properties": {
        n: {"type": "integer"} for n in ("pulled", "imported", "created", "rejected")}}}}
_EXAMPLE = {"id": "kobe-orion", "name": "神戸市 Orion", "kind": "orion-v2",
            "url": "https://orion.example.jp:1026", "interval": 300,
            "options": {"service": "kobe", "servicePath": "/", "type": "WeatherObserved"}}
PROBLEM: Schema = {"type": "object", "properties": {
    "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
    "detail": {"type": "string"}}}
REPORT: Schema = {"type": "object", "properties": {
    "source": {"type": "string"}, "format": {"enum": ["csv", "geojson", "json"]},
    "entityType": {"type": "string"}, "dataset": {"type": ["string", "null"]},
    "encoding": {"type": ["string", "null"]}, "delimiter": {"type": ["string", "null"]},
    "context": {"type": ["string", "null"]},
    **{n: {"type": "integer"} for n in ("rows", "imported", "created", "updated")},
    "seconds": {"type": "number"},
    "rejected": {"type": "array", "items": {"type": "object", "properties": {
        "row": {"type": "integer"}, "reason": {"type": "string"},
        "entityId": {"type": ["string", "null"]}}}}}}


def _problem(description: str) -> Schema:
    return {"description": description, "content": {
        "application/problem+json": {"schema": PROBLEM}, JSON: {"schema": PROBLEM}}}


def _json(schema: Schema, description: str) -> Schema:
    return {"description": description, "content": {JSON: {"schema": schema}}}


_TENANT = {"name": "NGSILD-Tenant", "in": "header", "required": False,
           "schema": {"type": "string"}, "description": "The tenant the system writes into."}
_SYSTEM_ID = {"name": "system_id", "in": "path", "required": True, "schema": {"type": "string"}}


def _op(op_id: str, tag: str, summary: str, responses: Schema, **extra: Any) -> Schema:
    return {"operationId": op_id, "tags": [tag], "summary": summary,
            "parameters": [_TENANT, *extra.pop("parameters", [])], "responses": responses, **extra}


def _query(name: str, description: str) -> Schema:
    return {"name": name, "in": "query", "required": False, "schema": {"type": "string"},
            "description": description}


def systems_paths() -> dict[str, Schema]:
    """The ``paths`` of ``/assets/v1/systems`` and ``/ingest/v1/imports``."""
    base = "/assets/v1/systems"
    one = _json(SYSTEM, "The system with its last run")
    return {
        base: {
            "get": _op("listSystems", SYSTEMS_TAG, "List external systems / 外部システム一覧",
                       {"200": _json({"type": "array", "items": SYSTEM}, "Every system"),
                        "400": _problem("Bad tenant")}),
            "post": _op("createSystem", SYSTEMS_TAG, "Register an external system / 外部システム登録",
                        {"201": one, "400": _problem("Invalid system (or a refused URL)"),
                         "409": _problem("The id is taken")},
                        requestBody={"required": True, "content": {JSON: {
                            "schema": SYSTEM, "example": _EXAMPLE}}})},
        f"{base}/{{system_id}}": {
            "parameters": [_SYSTEM_ID],
            "get": _op("retrieveSystem", SYSTEMS_TAG, "Show a system and its last run",
                       {"200": one, "404": _problem("No such system")}),
            "delete": _op("deleteSystem", SYSTEMS_TAG, "Delete a system (its entities stay)",
                          {"204": {"description": "Deleted"}, "404": _problem("No such system")})},
        f"{base}/{{system_id}}/run": {
            "parameters": [_SYSTEM_ID],
            "post": _op("runSystem", SYSTEMS_TAG, "Pull the system now / 今すぐ取得",
                        {"200": one, "404": _problem("No such system")})},
        "/ingest/v1/imports": {
            "post": _op("createImport", IMPORT_TAG,
                        "Import a CSV or GeoJSON file / CSV・GeoJSON の取り込み",
                        {"200": _json(REPORT, "Imported; rejected rows listed"),
                         "422": _json(REPORT, "Nothing could be imported"),
                         "400": _problem("The file or the options cannot be read"),
                         "413": _problem("The file is too large")},
                        parameters=[
                            _query("filename", "The file's name (helps detect the dataset)."),
                            _query("format", "csv or geojson (default: from Content-Type)."),
                            _query("dataset", "Recommended dataset: 10, 指定緊急避難場所一覧 or "
                                              "EvacuationSpace."),
                            _query("encoding", "utf-8, cp932 (Shift_JIS), utf-16, euc-jp."),
                            _query("delimiter", "The CSV delimiter."),
                            _query("code", "Local government code when the file has none."),
                            _query("type", "GeoJSON without a mapping: the entity type."),
                            _query("idProperty", "GeoJSON: the property holding the id."),
                            _query("mapping", "A mapping (JSON) for any other file.")],
                        requestBody={"required": True, "content": {
                            "text/csv": {"schema": {"type": "string", "format": "binary"}},
                            "application/geo+json": {"schema": {"type": "object"}}}})},
    }
