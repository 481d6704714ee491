"""OpenAPI 3.1 paths of the IoT agent (ED-IF-1, ED-DT-1) and the device APIs (AS-DV-1).

:func:`iot_paths` returns ``paths`` entries whose operationIds are the Starlette route names of
``cityos.ingest.iot.ROUTES`` and ``cityos.assets.devices.ROUTES``.  The provisioning API follows
telefonicaid/iotagent-node-lib (errors ``{"name", "message"}``); the native API answers RFC 7807.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]
IOT_TAG, DEVICES_TAG = "IoT agent", "Devices"

_ATTRIBUTE: Schema = {"type": "object", "required": ["name"], "properties": {
    "object_id": {"type": "string", "description": "The measure's key in device payloads."},
    "name": {"type": "string", "description": "The NGSI-LD attribute name."},
    "type": {"type": "string", "description": "Number, Integer, Boolean, Text, DateTime, "
                                              "geo:point, geo:json, Relationship, command..."},
    "expression": {"type": "string", "description": "Safe expression over the measures, "
                                                    "e.g. `t * 1.8 + 32`, `upper(s)`."},
    "unitCode": {"type": "string", "description": "UN/CEFACT unit code stored as unitCode."},
    "sourceUnit": {"type": "string", "description": "Unit the device sends; converted to unitCode."},
    "value": {"description": "static_attributes only: the value."}}}
_ATTRS: Schema = {"type": "array", "items": _ATTRIBUTE}
_LOCATION: Schema = {"type": "object", "description": "{lat, lon} numbers (a fixed place), "
                     "{lat, lon} measure keys, or a GeoJSON Point."}
_COMMON: Schema = {"attributes": _ATTRS, "lazy": _ATTRS, "commands": _ATTRS,
                   "static_attributes": _ATTRS, "explicitAttrs": {"type": "boolean"},
                   "timezone": {"type": "string", "examples": ["Asia/Tokyo"]},
                   "expected_interval": {"type": "number", "description": "Seconds between "
                                         "messages; silence for N x this marks it offline."},
                   "location": _LOCATION}
GROUP: Schema = {"type": "object", "required": ["apikey"], "properties": {
    "apikey": {"type": "string"}, "resource": {"type": "string", "default": "/iot/d"},
    "entity_type": {"type": "string"}, "cbroker": {"type": "string"},
    "autoprovision": {"type": "boolean", "default": True}, **_COMMON}}
DEVICE: Schema = {"type": "object", "required": ["device_id"], "properties": {
    "device_id": {"type": "string"}, "entity_name": {"type": "string"},
    "entity_type": {"type": "string"}, "apikey": {"type": "string"},
    "protocol": {"enum": ["PDI-IoTA-UltraLight", "PDI-IoTA-JSON"]},
    "transport": {"enum": ["HTTP", "MQTT"]},
    "endpoint": {"type": "string", "format": "uri"}, **_COMMON}}
FIWARE_ERROR: Schema = {"type": "object", "properties": {
    "name": {"type": "string", "examples": ["DEVICE_NOT_FOUND"]}, "message": {"type": "string"}}}

_SERVICE_HEADERS = [
    {"name": "fiware-service", "in": "header", "required": False, "schema": {"type": "string"},
     "description": "The tenant (the NGSI-LD tenant of the same name)."},
    {"name": "fiware-servicepath", "in": "header", "required": False,
     "schema": {"type": "string", "default": "/"}}]
_GROUP_QUERY = [{"name": n, "in": "query", "required": True, "schema": {"type": "string"}}
                for n in ("resource", "apikey")]
_PAGE = [{"name": n, "in": "query", "required": False, "schema": {"type": "integer", "minimum": 0}}
         for n in ("limit", "offset")]
_DEVICE_ID = {"name": "device_id", "in": "path", "required": True, "schema": {"type": "string"}}
_KI = [{"name": "k", "in": "query", "required": True, "schema": {"type": "string"},
        "description": "The API key of the device's service group."},
       {"name": "i", "in": "query", "required": True, "schema": {"type": "string"},
        "description": "The device id."}]


def _fiware_errors(*statuses: str) -> dict[str, Schema]:
    return {s: {"description": "Error / エラー", "content": {
        "application/json": {"schema": FIWARE_ERROR}}} for s in statuses}


def _problems(*statuses: str) -> dict[str, Schema]:
    return {s: {"description": "Problem details (RFC 7807)", "content": {
        "application/problem+json": {"schema": {"type": "object"}}}} for s in statuses}


def _json_body(schema: Schema) -> Schema:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _op(op_id: str, tag: str, summary: str, responses: dict[str, Schema], *,
        parameters: list[Schema] | None = None, body: Schema | None = None) -> Schema:
    op: Schema = {"operationId": op_id, "tags": [tag], "summary": summary,
                  "parameters": parameters or [], "responses": responses}
    if body is not None:
        op["requestBody"] = body
    return op


def _list(key: str, item: Schema) -> Schema:
    return {"description": "OK", "content": {"application/json": {"schema": {
        "type": "object", "properties": {"count": {"type": "integer"},
                                         key: {"type": "array", "items": item}}}}}}


_EMPTY = {"description": "Done (no body)"}
_MEASURE_OK = {"description": "Stored durably (only then is 200 sent)"}


def iot_paths() -> dict[str, Any]:
    """The ``paths`` of the IoT agent and device APIs."""
    services = _json_body({"type": "object", "required": ["services"], "properties": {
        "services": {"type": "array", "items": GROUP}}})
    devices = _json_body({"type": "object", "required": ["devices"], "properties": {
        "devices": {"type": "array", "items": DEVICE}}})
    errors = _fiware_errors("400", "404", "409", "413", "415", "503")
    measure_errors = _fiware_errors("400", "404", "413", "503")
    return {
        "/iot/services": {
            "post": _op("iot_create_services", IOT_TAG, "Add service groups / サービスグループ登録",
                        {"201": _EMPTY, **errors}, parameters=_SERVICE_HEADERS, body=services),
            "get": _op("iot_list_services", IOT_TAG, "List service groups",
                       {"200": _list("services", GROUP), **_fiware_errors("400")},
                       parameters=[*_SERVICE_HEADERS, *_PAGE]),
            "put": _op("iot_update_service", IOT_TAG, "Change a service group",
                       {"204": _EMPTY, **errors}, parameters=[*_SERVICE_HEADERS, *_GROUP_QUERY],
                       body=_json_body(GROUP)),
            "delete": _op("iot_delete_service", IOT_TAG, "Remove a service group",
                          {"204": _EMPTY, **errors}, parameters=[
                              *_SERVICE_HEADERS, *_GROUP_QUERY,
                              {"name": "device", "in": "query", "required": False,
                               "schema": {"type": "boolean"}}])},
        "/iot/devices": {
            "post": _op("iot_create_devices", IOT_TAG, "Provision devices / デバイス登録 "
                        "(creates their entities)", {"201": _EMPTY, **errors},
                        parameters=_SERVICE_HEADERS, body=devices),
            "get": _op("iot_list_devices", IOT_TAG, "List devices",
                       {"200": _list("devices", DEVICE), **_fiware_errors("400")},
                       parameters=[*_SERVICE_HEADERS, *_PAGE])},
        "/iot/devices/{device_id}": {
            "parameters": [_DEVICE_ID],
            "get": _op("iot_get_device", IOT_TAG, "One device", {"200": {
                "description": "OK", "content": {"application/json": {"schema": DEVICE}}},
                **_fiware_errors("404")}, parameters=_SERVICE_HEADERS),
            "put": _op("iot_update_device", IOT_TAG, "Change a device", {"204": _EMPTY, **errors},
                       parameters=_SERVICE_HEADERS, body=_json_body(DEVICE)),
            "delete": _op("iot_delete_device", IOT_TAG, "Deprovision a device (the entity stays)",
                          {"204": _EMPTY, **_fiware_errors("404")}, parameters=_SERVICE_HEADERS)},
        "/iot/json": {
            "post": _op("iot_json_measure", IOT_TAG, "JSON measures from a device",
                        {"200": _MEASURE_OK, **measure_errors}, parameters=_KI,
                        body=_json_body({"type": ["object", "array"], "examples": [
                            {"t": 21.5, "TimeInstant": "2026-11-26T09:00:00+09:00"}]}))},
        "/iot/d": {
            "post": _op("iot_ul_measure", IOT_TAG, "UltraLight 2.0 measures (`t|21.5|h|40#...`)",
                        {"200": _MEASURE_OK, **measure_errors}, parameters=_KI, body={
                            "required": True, "content": {"text/plain": {
                                "schema": {"type": "string"}}}}),
            "get": _op("iot_ul_measure_get", IOT_TAG, "UltraLight measures in the query (`d`)",
                       {"200": _MEASURE_OK, **measure_errors}, parameters=[
                           *_KI, {"name": "d", "in": "query", "required": True,
                                  "schema": {"type": "string"}}])},
        "/assets/v1/devices": {
            "get": _op("assets_list_devices", DEVICES_TAG, "Devices with live state / デバイス一覧",
                       {"200": {"description": "OK; X-Total-Count is the total"},
                        **_problems("400")}, parameters=[
                           {"name": "state", "in": "query", "required": False,
                            "schema": {"enum": ["online", "offline", "unknown"]}},
                           {"name": "type", "in": "query", "required": False,
                            "schema": {"type": "string"}}, *_PAGE]),
            "post": _op("assets_create_device", DEVICES_TAG, "Provision one device",
                        {"201": {"description": "Created: the device with its state",
                                "headers": {"Location": {
                                    "description": "/assets/v1/devices/{device_id}",
                                    "schema": {"type": "string"}}}},
                         **_problems("400", "409", "413", "415", "503")},
                        body=_json_body(DEVICE))},
        "/assets/v1/devices/{device_id}": {
            "parameters": [_DEVICE_ID],
            "get": _op("assets_get_device", DEVICES_TAG, "One device with its state",
                       {"200": {"description": "OK"}, **_problems("404")}),
            "delete": _op("assets_delete_device", DEVICES_TAG, "Deprovision a device",
                          {"204": _EMPTY, **_problems("404")})},
    }
