"""OpenAPI 3.1 paths of the NGSI-LD temporal API (``/ngsi-ld/v1/temporal/...``), to be merged into
the document :mod:`~cityos.gateway.openapi_ngsild` builds.

Entity-selection parameters (``id``, ``type``, ``q``, geo-query, paging) and error responses refer
to the shared components of that document; the temporal parameters are described here, from
``cityos/data/ngsild/temporal/query.py``.  Examples are a Kobe weather station (神戸港).
"""

from __future__ import annotations

from typing import Any

from cityos.gateway.openapi_params import problem_ref

Schema = dict[str, Any]
JSON, JSON_LD = "application/json", "application/ld+json"
BASE = "/ngsi-ld/v1/temporal"
INSTANCE_LIMIT = 1000   # mirrors cityos.data.ngsild.temporal.pagination.INSTANCE_LIMIT

_SENSOR = "urn:ngsi-ld:WeatherObserved:kobe-port"
_INSTANCE = "urn:ngsi-ld:attribute:instance:3f1b2c9e-8d4a-4e51-9a0e-5c2d7b6a1f00"
_NORMALIZED = {"id": _SENSOR, "type": "WeatherObserved", "temperature": [
    {"type": "Property", "value": 12.5, "observedAt": "2026-11-25T00:00:00.000Z",
     "unitCode": "CEL", "instanceId": _INSTANCE},
    {"type": "Property", "value": 13.0, "observedAt": "2026-11-25T01:00:00.000Z",
     "unitCode": "CEL", "instanceId": _INSTANCE[:-4] + "0001"}]}
_VALUES = {"id": _SENSOR, "type": "WeatherObserved", "temperature": {
    "type": "Property", "values": [[12.5, "2026-11-25T00:00:00.000000Z"],
                                   [13.0, "2026-11-25T01:00:00.000000Z"]]}}
_AGGREGATED = {"id": _SENSOR, "type": "WeatherObserved", "temperature": {
    "type": "Property",
    "avg": [[12.75, "2026-11-25T00:00:00.000000Z", "2026-11-25T03:00:00.000000Z"]],
    "max": [[13.0, "2026-11-25T00:00:00.000000Z", "2026-11-25T03:00:00.000000Z"]]}}
_CREATE = {"id": _SENSOR, "type": "WeatherObserved",
           "name": [{"type": "Property", "value": "神戸港 観測点",
                     "observedAt": "2026-11-25T09:00:00+09:00"}],
           "temperature": [{"type": "Property", "value": 12.5, "unitCode": "CEL",
                            "observedAt": "2026-11-25T09:00:00+09:00"},
                           {"type": "Property", "value": 13.0, "unitCode": "CEL",
                            "observedAt": "2026-11-25T10:00:00+09:00"}]}
_QUERY = {"type": "Query", "entities": [{"type": "WeatherObserved"}], "attrs": ["temperature"],
          "q": "temperature>10",
          "temporalQ": {"timerel": "after", "timeAt": "2026-11-25T00:00:00+09:00", "lastN": 24}}


def _q(name: str, description: str, schema: Schema, example: Any = None) -> Schema:
    out: Schema = {"name": name, "in": "query", "required": False, "description": description,
                   "schema": schema}
    if example is not None:
        out["example"] = example
    return out


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/parameters/{name}"}


_TIME = {"type": "string", "format": "date-time"}
TEMPORAL_PARAMETERS: list[Schema] = [
    _q("timerel", "`before` (t < timeAt), `after` (t > timeAt) or `between` (timeAt <= t < "
       "endTimeAt). Without it every instance is returned.",
       {"enum": ["before", "after", "between"]}, "between"),
    _q("timeAt", "ISO 8601 date-time with any offset (`+09:00`); required with timerel.", _TIME,
       "2026-11-25T09:00:00+09:00"),
    _q("endTimeAt", "End of a `between` window (exclusive).", _TIME, "2026-11-25T12:00:00+09:00"),
    _q("timeproperty", "The instance time used: `observedAt` (default; an instance without one "
       "counts at the time it was recorded), `createdAt` or `modifiedAt`; `deletedAt` shows the "
       "deletions of attributes instead (value `urn:ngsi-ld:null`, with `deletedAt`).",
       {"enum": ["observedAt", "createdAt", "modifiedAt", "deletedAt"],
        "default": "observedAt"}),
    _q("lastN", "Only the last N instances of each attribute (returned in time order).",
       {"type": "integer", "minimum": 1}, 10),
    _q("options", "`temporalValues` (simplified), `aggregatedValues`, `sysAttrs`.",
       {"type": "string"}, "temporalValues"),
    _q("format", "`normalized`, `temporalValues` or `aggregatedValues`.",
       {"enum": ["normalized", "temporalValues", "aggregatedValues"]}),
    _q("aggrMethods", "With aggregatedValues: a comma-separated list of totalCount, "
       "distinctCount, sum, avg, min, max, stddev, sumsq.", {"type": "string"}, "avg,max"),
    _q("aggrPeriodDuration", "ISO 8601 duration of each aggregation period (PT1H, P1D, P1M); "
       "periods start at timeAt or at the attribute's first instance. Absent or P0D: one period "
       "over the whole range.", {"type": "string"}, "PT1H"),
]


def temporal_parameters() -> dict[str, Schema]:
    """``components.parameters`` entries the temporal operations refer to (merge them in)."""
    return {p["name"]: p for p in TEMPORAL_PARAMETERS}


_TEMPORAL = [_ref(p["name"]) for p in TEMPORAL_PARAMETERS]
_SELECTION = [_ref(n) for n in ("id", "idPattern", "type", "attrs", "q", "georel", "geometry",
                                "coordinates", "geoproperty", "scopeQ", "limit", "offset",
                                "count", "lang", "pick", "omit", "datasetId")]
_HEADERS = [_ref("NGSILD-Tenant"), _ref("Link")]
_ENTITY_ID: Schema = {"name": "entity_id", "in": "path", "required": True,
                      "schema": {"type": "string", "format": "uri"}, "example": _SENSOR}
_ATTR_ID: Schema = {"name": "attr", "in": "path", "required": True,
                    "schema": {"type": "string"}, "example": "temperature"}
_INSTANCE_ID: Schema = {"name": "instance_id", "in": "path", "required": True,
                        "schema": {"type": "string", "format": "uri"}, "example": _INSTANCE}


def _errors(*codes: str) -> dict[str, Schema]:
    return {code: problem_ref(code) for code in codes}


def _examples(single: bool) -> dict[str, Schema]:
    bodies = {"normalized": _NORMALIZED, "temporalValues": _VALUES,
              "aggregatedValues": _AGGREGATED}
    return {name: {"summary": name, "value": body if single else [body]}
            for name, body in bodies.items()}


def _read_response(single: bool) -> dict[str, Schema]:
    schema: Schema = {"type": "object"} if single else {"type": "array",
                                                        "items": {"type": "object"}}
    content = {JSON: {"schema": schema, "examples": _examples(single)},
               JSON_LD: {"schema": schema, "examples": _examples(single)}}
    partial = {"Content-Range": {
        "description": "`date-time <range-start>-<range-end>/<lastN or *>`: the time range the "
                       "response is complete for; continue with `timerel=after&timeAt=<range-end>`"
                       " (forward) or `timerel=before&timeAt=<range-end>` (with lastN)",
        "schema": {"type": "string"},
        "example": "date-time 2026-11-25T00:00:00.000000Z-2026-11-25T16:39:00.000000Z/*"}}
    headers = {"Link": {"$ref": "#/components/headers/Link"}}
    if not single:
        headers["NGSILD-Results-Count"] = {"$ref": "#/components/headers/NGSILD-Results-Count"}
    return {"200": {"description": "The temporal representation", "headers": headers,
                    "content": content},
            "206": {"description": f"Truncated: more than {INSTANCE_LIMIT} instances (or "
                                   "aggregation periods) of an attribute matched",
                    "headers": {**headers, **partial}, "content": content}}


def _body(example: Any, summary: str) -> Schema:
    return {"required": True, "content": {
        media: {"schema": {"type": "object"}, "examples": {"kobe": {"summary": summary,
                                                                     "value": example}}}
        for media in (JSON, JSON_LD)}}


def _op(op_id: str, summary: str, description: str, params: list[Schema],
        responses: dict[str, Schema], body: Schema | None = None) -> Schema:
    out: Schema = {"operationId": op_id, "tags": ["Temporal"], "summary": summary,
                   "description": description, "parameters": params, "responses": responses}
    if body is not None:
        out["requestBody"] = body
    return out


def temporal_paths() -> dict[str, Schema]:
    """The ``paths`` entries of the temporal API."""
    no_content = {"204": {"description": "Done"}}
    return {
        f"{BASE}/entities": {
            "get": _op("queryTemporal", "Query temporal evolution / 履歴の検索",
                       "The history of every entity matching the filters (one of id, idPattern, "
                       "type, attrs, q, geo-query, scopeQ is needed). q and geo-queries apply to "
                       "the entity's current state, or to its last recorded state when it was "
                       "deleted. Entities are paged with limit/offset; instances per attribute "
                       f"are limited to {INSTANCE_LIMIT} (206 + Content-Range).",
                       [*_HEADERS, *_SELECTION, *_TEMPORAL],
                       {**_read_response(False), **_errors("400", "404", "406", "503")}),
            "post": _op("createTemporal", "Create or add to a temporal entity / 履歴の登録",
                        "Adds the instances of the body (every attribute is an array of "
                        "instances) to the temporal representation; the current entity is not "
                        "changed.",
                        _HEADERS,
                        {"201": {"description": "Created", "headers": {
                            "Location": {"$ref": "#/components/headers/Location"}}},
                         "204": {"description": "The temporal entity existed; instances added"},
                         **_errors("400", "413", "415", "503")},
                        _body(_CREATE, "神戸港の気温")),
        },
        f"{BASE}/entities/{{entity_id}}": {
            "parameters": [_ENTITY_ID],
            "get": _op("retrieveTemporal", "Retrieve temporal evolution / 履歴の取得",
                       "The history of one entity (also after the entity was deleted).",
                       [*_HEADERS, _ref("attrs"), _ref("lang"), _ref("pick"), _ref("omit"),
                        _ref("datasetId"), *_TEMPORAL],
                       {**_read_response(True), **_errors("400", "404", "406", "503")}),
            "delete": _op("deleteTemporal", "Delete temporal evolution / 履歴の削除",
                          "Deletes every recorded instance of the entity (the current entity, "
                          "if any, is kept).", _HEADERS,
                          {**no_content, **_errors("400", "404", "503")}),
        },
        f"{BASE}/entities/{{entity_id}}/attrs": {
            "parameters": [_ENTITY_ID],
            "post": _op("appendTemporalAttrs", "Add instances / 履歴の追加",
                        "Appends the instances of the body to an existing temporal entity.",
                        _HEADERS,
                        {**no_content, **_errors("400", "404", "413", "415", "503")},
                        _body({"humidity": [{"type": "Property", "value": 60,
                                             "observedAt": "2026-11-25T13:00:00+09:00"}]},
                              "湿度")),
        },
        f"{BASE}/entities/{{entity_id}}/attrs/{{attr}}": {
            "parameters": [_ENTITY_ID, _ATTR_ID],
            "delete": _op("deleteTemporalAttr", "Delete an attribute's history / 属性履歴の削除",
                          "Deletes the default instances, those of `datasetId`, or all of them "
                          "(`deleteAll=true`).",
                          [*_HEADERS, _ref("attrDatasetId"),
                           _ref("deleteAll")],
                          {**no_content, **_errors("400", "404", "503")}),
        },
        f"{BASE}/entities/{{entity_id}}/attrs/{{attr}}/{{instance_id}}": {
            "parameters": [_ENTITY_ID, _ATTR_ID, _INSTANCE_ID],
            "patch": _op("modifyTemporalAttrInstance", "Modify an instance / 履歴の修正",
                         "The members of the body replace those of the instance; its observedAt, "
                         "unitCode and datasetId are kept unless given.",
                         _HEADERS,
                         {**no_content, **_errors("400", "404", "413", "415", "503")},
                         _body({"value": 12.8}, "測定値の訂正")),
            "delete": _op("deleteTemporalAttrInstance", "Delete an instance / 履歴の1件削除",
                          "Deletes one instance.", _HEADERS,
                          {**no_content, **_errors("400", "404", "503")}),
        },
        f"{BASE}/entityOperations/query": {
            "post": _op("queryTemporalBatch", "Query temporal evolution (POST) / 履歴の検索 (POST)",
                        "GET /temporal/entities with the filters and `temporalQ` in a Query "
                        "body; paging, representation and aggregation stay URL parameters.",
                        [*_HEADERS, _ref("limit"), _ref("offset"), _ref("count"),
                         *[_ref(n) for n in ("options", "format", "aggrMethods",
                                             "aggrPeriodDuration")]],
                        {**_read_response(False),
                         **_errors("400", "404", "406", "413", "415", "503")},
                        _body(_QUERY, "10 度を超える観測点の直近 24 件")),
        },
    }
