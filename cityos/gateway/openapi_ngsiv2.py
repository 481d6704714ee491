"""OpenAPI 3.1 paths of the NGSI v2 face (FIWARE Orion's API) on the broker's data.

:func:`ngsiv2_paths` returns the ``paths`` entries; their operationIds equal the Starlette route
names of ``cityos.data.ngsiv2.ROUTES``.  Schemas are inline (NGSI v2 shares none with NGSI-LD);
errors use Orion's body ``{"error", "description"}``.  See docs/ngsiv2.md and ADR 0008.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]
TAG = "NGSI v2"
JSON = "application/json"

ERROR: Schema = {"type": "object", "required": ["error"],
                 "properties": {"error": {"type": "string"}, "description": {"type": "string"}}}
_ERRORS = {"400": ("BadRequest / ParseError", "invalid characters in entity id"),
           "404": ("NotFound", "The requested entity has not been found. Check type and id"),
           "406": ("NotAcceptable", "accepted MIME types: application/json, text/plain"),
           "411": ("ContentLengthRequired", "Zero/No Content-Length in PUT/POST/PATCH request"),
           "413": ("RequestEntityTooLarge", "payload size: 9000000, max size supported: 8388608"),
           "415": ("UnsupportedMediaType", "not supported content type: text/xml"),
           "422": ("Unprocessable", "Already Exists")}
ATTRIBUTE: Schema = {
    "type": "object", "additionalProperties": False,
    "properties": {"type": {"type": "string", "description": "Number, Text, Boolean, DateTime, "
                                                          "geo:json, geo:point, Relationship, "
                                                          "StructuredValue, None or any type"},
                   "value": {}, "metadata": {"type": "object", "additionalProperties": {
                       "type": "object", "properties": {"type": {"type": "string"},
                                                        "value": {}}}}}}
ENTITY: Schema = {"type": "object", "required": ["id"],
                  "properties": {"id": {"type": "string", "maxLength": 256},
                                 "type": {"type": "string", "maxLength": 256, "default": "Thing"}},
                  "additionalProperties": {"description": "an attribute (or, with keyValues, its "
                                                          "value)"}}
ROOM: Schema = {"id": "Room1", "type": "Room",
                "temperature": {"type": "Number", "value": 23.5, "metadata": {}},
                "location": {"type": "geo:point", "value": "34.69, 135.19", "metadata": {}}}


def _header(name: str, description: str) -> Schema:
    return {"name": name, "in": "header", "required": False, "description": description,
            "schema": {"type": "string"}}


def _query(name: str, description: str) -> Schema:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": {"type": "string"}}


SERVICE = _header("Fiware-Service", "The tenant (letters, digits, _; lower-cased). Same tenant as "
                                    "NGSILD-Tenant of the NGSI-LD API. None = the default tenant.")
SERVICE_PATH = _header("Fiware-ServicePath", "Hierarchical scope: `/Hyogo/Kobe`. Writes: one path "
                                             "(default `/`). Reads: up to 10, comma-separated, "
                                             "`/#` for a subtree (default `/#`).")
TYPE = _query("type", "Entity type, to pick the entity of that type.")
OPTIONS = _query("options", "Comma-separated: keyValues, values, unique, count (reads); "
                            "keyValues, upsert, append, overrideMetadata (writes).")
LIST_PARAMS = [
    _query("id", "Comma-separated entity ids."), _query("idPattern", "Regular expression on ids."),
    _query("type", "Comma-separated entity types."),
    _query("typePattern", "Regular expression on types."),
    _query("q", "Simple Query Language: `temperature>20;color==red,blue;name~=^K;!broken`."),
    _query("mq", "Query on metadata: `temperature.accuracy<0.9`."),
    _query("georel", "near;maxDistance:1000 | near;minDistance:10 | coveredBy | intersects | "
                     "equals | disjoint"),
    _query("geometry", "point | line | polygon | box"),
    _query("coords", "`lat,lon` pairs separated by `;`."),
    _query("attrs", "Attributes to show, in order; `dateCreated`, `dateModified`, `*`."),
    _query("metadata", "Metadata to show; `dateCreated`, `dateModified`, `*`."),
    _query("orderBy", "`temperature,!humidity`, `id`, `type`, `dateCreated`, `geo:distance`."),
    {"name": "limit", "in": "query", "required": False,
     "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 20}},
    {"name": "offset", "in": "query", "required": False,
     "schema": {"type": "integer", "minimum": 0, "default": 0}},
    OPTIONS]


def _errors(*statuses: str) -> dict[str, Schema]:
    return {s: {"description": _ERRORS[s][0], "content": {JSON: {"schema": ERROR, "examples": {
        "error": {"value": {"error": _ERRORS[s][0].split(" ")[0], "description": _ERRORS[s][1]}}}}}}
        for s in statuses}


def _json(schema: Schema, example: Any = None) -> Schema:
    content: Schema = {"schema": schema}
    if example is not None:
        content["examples"] = {"example": {"value": example}}
    return {JSON: content}


def _op(op_id: str, summary: str, *, params: list[Schema] | None = None,
        body: Schema | None = None, ok: Schema | None = None, errors: tuple[str, ...] = ("400",),
        write: bool = False, description: str = "") -> Schema:
    responses: dict[str, Schema] = dict(ok or {"204": {"description": "Done"}})
    responses.update(_errors(*errors, *(("411", "413", "415") if write else ())))
    op: Schema = {"operationId": op_id, "tags": [TAG], "summary": summary,
                  "parameters": [SERVICE, SERVICE_PATH, *(params or [])], "responses": responses}
    if description:
        op["description"] = description
    if body is not None:
        op["requestBody"] = {"required": True, "content": _json(body)}
    return op


def _list(schema: Schema, example: Any, headers: bool = False) -> dict[str, Schema]:
    out: Schema = {"description": "OK", "content": _json({"type": "array", "items": schema},
                                                         example)}
    if headers:
        out["headers"] = {"Fiware-Total-Count": {"schema": {"type": "integer"},
                                                 "description": "With options=count."}}
    return {"200": out}


_ID = {"name": "entityId", "in": "path", "required": True, "schema": {"type": "string"}}
_ATTR = {"name": "attrName", "in": "path", "required": True, "schema": {"type": "string"}}
_TYPE_NAME = {"name": "entityType", "in": "path", "required": True, "schema": {"type": "string"}}
_READ_ERRORS = ("400", "404", "406")


def ngsiv2_paths() -> dict[str, Schema]:
    """The ``paths`` of the NGSI v2 API."""
    entity_ok = {"200": {"description": "OK", "content": _json(ENTITY, ROOM)}}
    attr_ok = {"200": {"description": "OK", "content": _json(ATTRIBUTE, ROOM["temperature"])}}
    created = {"201": {"description": "Created (204 when upsert updated an entity)",
                       "headers": {"Location": {"schema": {"type": "string"},
                                                "description": "/v2/entities/{id}?type={type}"}}},
               "204": {"description": "Updated (options=upsert)"}}
    attrs_body: Schema = {"type": "object", "additionalProperties": ATTRIBUTE}
    return {
        "/v2": {"get": _op("v2RetrieveApiResources", "API entry point", ok={"200": {
            "description": "OK", "content": _json({"type": "object"}, {
                "entities_url": "/v2/entities", "types_url": "/v2/types",
                "subscriptions_url": "/v2/subscriptions",
                "registrations_url": "/v2/registrations"})}}, errors=("406",))},
        "/version": {"get": _op("v2Version", "Version in Orion's shape", ok={"200": {
            "description": "OK", "content": _json({"type": "object", "required": ["orion"]})}},
            errors=("406",))},
        "/v2/entities": {
            "get": _op("v2ListEntities", "List entities", params=LIST_PARAMS,
                       ok=_list(ENTITY, [ROOM], headers=True), errors=_READ_ERRORS),
            "post": _op("v2CreateEntity", "Create an entity", params=[OPTIONS], body=ENTITY,
                        ok=created, errors=("400", "422"), write=True)},
        "/v2/entities/{entityId}": {
            "parameters": [_ID],
            "get": _op("v2RetrieveEntity", "Retrieve an entity", params=[
                TYPE, LIST_PARAMS[9], LIST_PARAMS[10], OPTIONS], ok=entity_ok, errors=_READ_ERRORS),
            "delete": _op("v2RemoveEntity", "Remove an entity", params=[TYPE],
                          errors=("400", "404"))},
        "/v2/entities/{entityId}/attrs": {
            "parameters": [_ID],
            "get": _op("v2RetrieveEntityAttributes", "Retrieve the attributes of an entity",
                       params=[TYPE, LIST_PARAMS[9], LIST_PARAMS[10], OPTIONS],
                       ok={"200": {"description": "OK", "content": _json(attrs_body)}},
                       errors=_READ_ERRORS),
            **{method: _op(op_id, summary, params=[TYPE, OPTIONS], body=attrs_body,
                           errors=("400", "404", "422"), write=True)
               for method, op_id, summary in (
                   ("post", "v2UpdateOrAppendEntityAttributes",
                    "Update or append attributes (options=append: strict append)"),
                   ("patch", "v2UpdateExistingEntityAttributes", "Update existing attributes"),
                   ("put", "v2ReplaceAllEntityAttributes", "Replace all attributes"))}},
        "/v2/entities/{entityId}/attrs/{attrName}": {
            "parameters": [_ID, _ATTR],
            "get": _op("v2GetAttributeData", "Get one attribute", params=[
                TYPE, LIST_PARAMS[10]], ok=attr_ok, errors=_READ_ERRORS),
            "put": _op("v2UpdateAttributeData", "Replace one attribute", params=[TYPE],
                       body=ATTRIBUTE, errors=("400", "404"), write=True),
            "delete": _op("v2RemoveSingleAttribute", "Remove one attribute", params=[TYPE],
                          errors=("400", "404"))},
        "/v2/entities/{entityId}/attrs/{attrName}/value": {
            "parameters": [_ID, _ATTR],
            "get": _op("v2GetAttributeValue", "Get an attribute value", params=[TYPE],
                       description="Objects and arrays as JSON (application/json or text/plain, "
                                   "as Accept allows); strings, numbers, booleans and null as "
                                   "text/plain, strings in double quotes.",
                       ok={"200": {"description": "The value", "content": _json({})}},
                       errors=_READ_ERRORS),
            "put": _op("v2UpdateAttributeValue", "Set an attribute value", params=[TYPE],
                       body={}, errors=("400", "404"), write=True,
                       description="The body is JSON, or `text/plain`: a number, true, false, "
                                   "null or a \"quoted\" string. The attribute keeps its type "
                                   "and metadata.")},
        "/v2/types": {"get": _op("v2ListEntityTypes", "List entity types", params=[
            LIST_PARAMS[12], LIST_PARAMS[13], OPTIONS], ok=_list({"type": "object"}, [
                {"type": "Room", "attrs": {"temperature": {"types": ["Number"]}}, "count": 1}],
                headers=True), errors=("400", "406"))},
        "/v2/types/{entityType}": {"parameters": [_TYPE_NAME], "get": _op(
            "v2RetrieveEntityType", "One entity type", ok={"200": {
                "description": "OK", "content": _json({"type": "object"})}},
            errors=("400", "404", "406"))},
        "/v2/op/update": {"post": _op("v2Update", "Batch update (atomic)", params=[OPTIONS],
                                      body={"type": "object", "required": ["actionType",
                                                                           "entities"],
                                            "properties": {"actionType": {"enum": [
                                                "append", "appendStrict", "update", "delete",
                                                "replace"]}, "entities": {
                                                "type": "array", "minItems": 1, "items": ENTITY}}},
                                      errors=("400", "404", "422"), write=True)},
        "/v2/op/query": {"post": _op("v2Query", "Batch query", params=[
            LIST_PARAMS[12], LIST_PARAMS[13], LIST_PARAMS[11], OPTIONS],
            body={"type": "object", "properties": {
                "entities": {"type": "array", "items": {"type": "object"}},
                "attrs": {"type": "array", "items": {"type": "string"}},
                "metadata": {"type": "array", "items": {"type": "string"}},
                "expression": {"type": "object"}}},
            ok=_list(ENTITY, [ROOM], headers=True), errors=("400", "406"), write=True)},
        **_subscription_paths(),
    }


_SUB_ID = {"name": "sub_id", "in": "path", "required": True, "schema": {"type": "string"}}
SUBSCRIPTION: Schema = {
    "type": "object", "required": ["subject", "notification"],
    "properties": {
        "id": {"type": "string", "readOnly": True, "description": "24 hexadecimal digits"},
        "description": {"type": "string", "maxLength": 1024},
        "subject": {"type": "object", "required": ["entities"], "properties": {
            "entities": {"type": "array", "minItems": 1, "items": {
                "type": "object", "properties": {k: {"type": "string"} for k in (
                    "id", "idPattern", "type", "typePattern")}}},
            "condition": {"type": "object", "properties": {
                "attrs": {"type": "array", "items": {"type": "string"}},
                "expression": {"type": "object", "properties": {k: {"type": "string"} for k in (
                    "q", "mq", "georel", "geometry", "coords")}},
                "alterationTypes": {"type": "array", "items": {"enum": [
                    "entityCreate", "entityChange", "entityUpdate", "entityDelete"]}}}}}},
        "notification": {"type": "object", "properties": {
            "http": {"type": "object", "required": ["url"],
                     "properties": {"url": {"type": "string"}}},
            "httpCustom": {"type": "object", "required": ["url"], "properties": {
                "url": {"type": "string"}, "headers": {"type": "object"},
                "qs": {"type": "object"},
                "method": {"enum": ["POST", "PUT", "PATCH", "GET", "DELETE"]}}},
            "mqtt": {"type": "object", "required": ["url", "topic"], "properties": {
                "url": {"type": "string", "description": "mqtt://host:port"},
                "topic": {"type": "string"}, "qos": {"enum": [0, 1, 2]},
                "user": {"type": "string"}, "passwd": {"type": "string"}}},
            "mqttCustom": {"type": "object"},
            "attrs": {"type": "array", "items": {"type": "string"}},
            "exceptAttrs": {"type": "array", "items": {"type": "string"}},
            "metadata": {"type": "array", "items": {"type": "string"}},
            "attrsFormat": {"enum": ["normalized", "keyValues", "values", "legacy"]},
            "onlyChangedAttrs": {"type": "boolean"},
            **{k: {"readOnly": True} for k in (
                "timesSent", "lastNotification", "lastSuccess", "lastSuccessCode",
                "lastFailure", "lastFailureReason", "failsCounter")}}},
        "expires": {"type": "string", "format": "date-time"},
        "status": {"enum": ["active", "inactive", "oneshot", "failed", "expired"],
                   "description": "failed and expired are reported, not written"},
        "throttling": {"type": "number", "minimum": 0, "description": "seconds"}}}
SUBSCRIPTION_EXAMPLE = {
    "description": "Rooms over 40 degrees",
    "subject": {"entities": [{"idPattern": ".*", "type": "Room"}],
                "condition": {"attrs": ["temperature"], "expression": {"q": "temperature>40"}}},
    "notification": {"http": {"url": "http://receiver.example.org/notify"},
                     "attrs": ["temperature"], "attrsFormat": "keyValues"},
    "expires": "2040-01-01T00:00:00+09:00", "throttling": 5}


def _subscription_paths() -> dict[str, Schema]:
    """``/v2/subscriptions``: Orion's subscriptions, on the broker's one registry."""
    created = {"201": {"description": "Created", "headers": {"Location": {
        "schema": {"type": "string"}, "description": "/v2/subscriptions/{id}"}}}}
    one_ok = {"200": {"description": "OK", "content": _json(SUBSCRIPTION, SUBSCRIPTION_EXAMPLE)}}
    paging = [LIST_PARAMS[12], LIST_PARAMS[13], _query("options", "count")]
    return {
        "/v2/subscriptions": {
            "get": _op("v2ListSubscriptions", "List the tenant's v2 subscriptions", params=paging,
                       ok=_list(SUBSCRIPTION, [SUBSCRIPTION_EXAMPLE], headers=True)),
            "post": _op("v2CreateSubscription", "Create a subscription", body=SUBSCRIPTION,
                        ok=created, write=True,
                        description="Fiware-ServicePath (one path, default `/#`) limits the "
                                    "entities notified. Notifications: `{subscriptionId, data}` "
                                    "with Fiware-Service, Fiware-ServicePath and "
                                    "Ngsiv2-AttrsFormat headers.")},
        "/v2/subscriptions/{sub_id}": {
            "parameters": [_SUB_ID],
            "get": _op("v2RetrieveSubscription", "Retrieve a subscription (with its counters)",
                       ok=one_ok, errors=("404",)),
            "patch": _op("v2UpdateSubscription", "Update a subscription: the members given "
                                                 "replace the stored ones",
                         body={"type": "object"}, errors=("400", "404"), write=True),
            "delete": _op("v2DeleteSubscription", "Delete a subscription", errors=("404",))},
    }
