"""OpenAPI 3.1 paths of context source registrations and their subscriptions.

``/ngsi-ld/v1/csourceRegistrations`` and ``/ngsi-ld/v1/csourceSubscriptions``.

:func:`csource_paths` returns the ``paths`` entries; their operationIds equal the Starlette route
names of ``cityos.data.ngsild.csource.ROUTES``.  Shared parameters and error responses are the
components :mod:`~cityos.gateway.openapi_ngsild` builds.  Distributed operations themselves
(forwarding of entity requests to registered sources) change no path: they are described on the
registration operations and in docs/federation.md.
"""

from __future__ import annotations

from typing import Any

from cityos.gateway.openapi_subscriptions import (
    JSON,
    JSON_LD,
    LINK,
    LOCATION_HEADER,
    MERGE_PATCH,
    SUB_ID_PARAM,
    SYS_ATTRS,
    TENANT,
    Schema,
    error_responses,
    ok_response,
    param_ref,
)

TAG = "Context sources"
OPERATIONS = ["federationOps", "updateOps", "retrieveOps", "redirectionOps", "createEntity",
              "updateAttrs", "appendAttrs", "deleteAttrs", "deleteEntity", "mergeEntity",
              "replaceEntity", "replaceAttrs", "retrieveEntity", "queryEntity"]
_NAMES: Schema = {"type": "array", "minItems": 1, "items": {"type": "string"}}
_INTERVAL: Schema = {"type": "object", "required": ["startAt"], "additionalProperties": False,
                     "properties": {"startAt": {"type": "string", "format": "date-time"},
                                    "endAt": {"type": "string", "format": "date-time"}}}
_GEOMETRY: Schema = {"type": "object", "required": ["type"],
                     "description": "A GeoJSON geometry (lon/lat)."}
REGISTRATION: Schema = {
    "type": "object", "required": ["type", "information", "endpoint"],
    "description": "An NGSI-LD ContextSourceRegistration (ETSI GS CIM 009 5.2.9). Other members "
                   "are kept as registration properties (queried with `csf`).",
    "properties": {
        "id": {"type": "string", "format": "uri"},
        "type": {"const": "ContextSourceRegistration"},
        "registrationName": {"type": "string"},
        "description": {"type": "string"},
        "information": {"type": "array", "minItems": 1, "items": {
            "type": "object", "minProperties": 1, "additionalProperties": False,
            "properties": {
                "entities": {"type": "array", "minItems": 1, "items": {
                    "type": "object", "required": ["type"], "additionalProperties": False,
                    "properties": {"id": {"type": "string", "format": "uri"},
                                   "idPattern": {"type": "string", "maxLength": 256},
                                   "type": {"anyOf": [{"type": "string"}, _NAMES]}}}},
                "propertyNames": _NAMES, "relationshipNames": _NAMES}}},
        "endpoint": {"type": "string", "format": "uri",
                     "description": "Base URL of the source's NGSI-LD API (requests go to "
                                    "`<endpoint>/ngsi-ld/v1/...`). Private and loopback "
                                    "addresses need CITYOS_NOTIFICATION_ALLOW."},
        "mode": {"enum": ["inclusive", "exclusive", "redirect", "auxiliary"],
                 "default": "inclusive"},
        "operations": {"type": "array", "minItems": 1, "default": ["federationOps"],
                       "items": {"type": "string", "examples": OPERATIONS}},
        "contextSourceInfo": {"type": "array", "description": "Sent as HTTP headers with every "
                                                             "forwarded request.",
                              "items": {"type": "object", "required": ["key", "value"],
                                        "properties": {"key": {"type": "string"},
                                                       "value": {"type": "string"}}}},
        "observationInterval": _INTERVAL, "managementInterval": _INTERVAL,
        "location": _GEOMETRY, "observationSpace": _GEOMETRY, "operationSpace": _GEOMETRY,
        "expiresAt": {"type": "string", "format": "date-time"},
        "tenant": {"type": "string", "description": "Tenant to use at the source."},
        "scope": {"anyOf": [{"type": "string"}, _NAMES]},
        "status": {"enum": ["ok", "failed"], "readOnly": True},
        "timesSent": {"type": "integer", "readOnly": True},
        "timesFailed": {"type": "integer", "readOnly": True},
        "lastSuccess": {"type": "string", "format": "date-time", "readOnly": True},
        "lastFailure": {"type": "string", "format": "date-time", "readOnly": True},
        "createdAt": {"type": "string", "format": "date-time", "readOnly": True},
        "modifiedAt": {"type": "string", "format": "date-time", "readOnly": True},
    }}
EXAMPLE: Schema = {
    "id": "urn:ngsi-ld:ContextSourceRegistration:city-a-parking",
    "type": "ContextSourceRegistration",
    "registrationName": "隣の市の駐車場 / parking of the neighbouring city",
    "information": [{"entities": [{"type": "ParkingSpot"}]}],
    "endpoint": "https://city-a.example.jp",
    "mode": "inclusive", "operations": ["retrieveOps"],
    "contextSourceInfo": [{"key": "Authorization", "value": "Bearer <token of city A>"}],
}

_ID: Schema = {"name": "reg_id", "in": "path", "required": True,
               "description": "The registration id (a URI).", "schema": {"type": "string"}}
_CONFLICT: Schema = {"description": "An exclusive or redirect registration overlaps existing "
                                    "entities or another exclusive registration (Conflict)",
                     "content": {JSON: {"schema": {"type": "object"}}}}


def _query(name: str, description: str) -> Schema:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": {"type": "string"}}


def csource_paths() -> dict[str, Any]:
    """The ``paths`` of the registration API, to merge into the NGSI-LD OpenAPI document."""
    create = {
        "operationId": "createCSR", "tags": [TAG],
        "summary": "Register a context source / コンテキストソース登録",
        "description": "From now on entity reads (and, per mode and operations, writes) that the "
                       "registration covers are forwarded to `endpoint` and merged with local "
                       "data. 409 Conflict when an exclusive or redirect registration overlaps "
                       "existing data (clause 5.9.2.4).",
        "parameters": [TENANT, LINK],
        "requestBody": {"required": True, "content": {
            m: {"schema": REGISTRATION, "examples": {"kobe": {"summary": "神戸市",
                                                              "value": EXAMPLE}}}
            for m in (JSON, JSON_LD)}},
        "responses": {"201": {"description": "Created; `Location` is "
                                             "/ngsi-ld/v1/csourceRegistrations/{id}",
                              "headers": LOCATION_HEADER},
                      **error_responses("400", "413", "415", "503"), "409": _CONFLICT},
    }
    query = {
        "operationId": "queryCSR", "tags": [TAG],
        "summary": "Query registrations / 登録の検索",
        "description": "Registrations that may provide the entities described by `type`, `id`, "
                       "`idPattern`, `attrs`, `q`; `csf` filters on the registration's own "
                       "properties; a geo-query tests its `location`.",
        "parameters": [TENANT, LINK, *map(param_ref, ("type", "id", "idPattern", "attrs", "q")),
                       _query("csf", "A q expression over the registration's properties."),
                       *map(param_ref, ("georel", "geometry", "coordinates", "geoproperty",
                                        "limit", "offset", "count")),
                       SYS_ATTRS],
        "responses": {"200": ok_response({"type": "array", "items": REGISTRATION}, [EXAMPLE],
                                         "One page of registrations", paged=True),
                      **error_responses("400", "403", "406", "503")},
    }
    retrieve = {
        "operationId": "retrieveCSR", "tags": [TAG],
        "summary": "Retrieve a registration / 登録の取得",
        "description": "The registration with its forwarding status (status, timesSent, "
                       "timesFailed, lastSuccess, lastFailure) once requests were forwarded.",
        "parameters": [TENANT, LINK, SYS_ATTRS],
        "responses": {"200": ok_response(REGISTRATION, EXAMPLE, "The registration"),
                      **error_responses("400", "404", "406", "503")},
    }
    update = {
        "operationId": "updateCSR", "tags": [TAG],
        "summary": "Update a registration / 登録の更新",
        "description": "Each member of the body replaces the stored one (`expiresAt: null` "
                       "removes the expiry); the result is validated whole.",
        "parameters": [TENANT, LINK],
        "requestBody": {"required": True, "content": {
            m: {"schema": {"type": "object"}, "examples": {"endpoint": {
                "summary": "new endpoint", "value": {"endpoint": "https://city-a.example.jp/v2"}}}}
            for m in (JSON, JSON_LD, MERGE_PATCH)}},
        "responses": {"204": {"description": "Updated"},
                      **error_responses("400", "404", "413", "415", "503"), "409": _CONFLICT},
    }
    delete = {
        "operationId": "deleteCSR", "tags": [TAG],
        "summary": "Delete a registration / 登録の削除",
        "description": "Entity requests are no longer forwarded to the source.",
        "parameters": [TENANT],
        "responses": {"204": {"description": "Deleted"}, **error_responses("400", "404", "503")},
    }
    return {
        "/ngsi-ld/v1/csourceRegistrations": {"get": query, "post": create},
        "/ngsi-ld/v1/csourceRegistrations/{reg_id}": {
            "parameters": [_ID], "get": retrieve, "patch": update, "delete": delete},
        **csub_paths(),
    }


CSUB: Schema = {
    "type": "object", "required": ["type", "notification"],
    "description": "A subscription to context source registrations: `csourceNotification`s "
                   "(`triggerReason` newlyMatching, updated, noLongerMatching) are POSTed to "
                   "the endpoint when a matching registration appears, changes or goes away, and "
                   "once on creation for the registrations matching then. No timeInterval.",
    "properties": {
        "id": {"type": "string", "format": "uri"},
        "type": {"const": "Subscription"},
        "subscriptionName": {"type": "string"}, "description": {"type": "string"},
        "entities": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["type"],
            "properties": {"id": {"type": "string", "format": "uri"},
                           "idPattern": {"type": "string"}, "type": {"type": "string"}}}},
        "watchedAttributes": _NAMES,
        "csf": {"type": "string", "description": "A q expression over registration properties."},
        "geoQ": {"type": "object"},
        "notification": {"type": "object", "required": ["endpoint"],
                         "description": "As for entity subscriptions; http(s) endpoints only."},
        "expiresAt": {"type": "string", "format": "date-time"},
        "isActive": {"type": "boolean", "default": True},
        "status": {"enum": ["active", "paused", "expired"], "readOnly": True},
    }}
CSUB_EXAMPLE: Schema = {
    "id": "urn:ngsi-ld:Subscription:new-parking-sources", "type": "Subscription",
    "subscriptionName": "駐車場データの提供元 / new parking sources",
    "entities": [{"type": "ParkingSpot"}],
    "notification": {"endpoint": {"uri": "https://receiver.example.jp/csources",
                                  "accept": JSON}},
}


def csub_paths() -> dict[str, Any]:
    """The ``paths`` of ``/csourceSubscriptions``."""
    tag = [TAG]
    body = {"required": True, "content": {
        m: {"schema": CSUB, "examples": {"kobe": {"summary": "神戸市", "value": CSUB_EXAMPLE}}}
        for m in (JSON, JSON_LD)}}
    return {
        "/ngsi-ld/v1/csourceSubscriptions": {
            "post": {"operationId": "createCSRSubscription", "tags": tag,
                     "summary": "Subscribe to registrations / 登録の購読",
                     "description": "Stored, then notified once with the registrations "
                                    "matching now.",
                     "parameters": [TENANT, LINK], "requestBody": body,
                     "responses": {"201": {"description": "Created",
                                           "headers": LOCATION_HEADER},
                                   **error_responses("400", "409", "413", "415", "422", "503")}},
            "get": {"operationId": "queryCSRSubscription", "tags": tag,
                    "summary": "List csource subscriptions / 登録購読の一覧",
                    "description": "The tenant's csource subscriptions, oldest first.",
                    "parameters": [TENANT, LINK, param_ref("limit"), param_ref("offset"),
                                   param_ref("count"), SYS_ATTRS],
                    "responses": {"200": ok_response({"type": "array", "items": CSUB},
                                                     [CSUB_EXAMPLE], "One page", paged=True),
                                  **error_responses("400", "403", "406", "503")}}},
        "/ngsi-ld/v1/csourceSubscriptions/{sub_id}": {
            "parameters": [SUB_ID_PARAM],
            "get": {"operationId": "retrieveCSRSubscription", "tags": tag,
                    "summary": "Retrieve a csource subscription / 登録購読の取得",
                    "description": "With status and delivery counters in `notification`.",
                    "parameters": [TENANT, LINK, SYS_ATTRS],
                    "responses": {"200": ok_response(CSUB, CSUB_EXAMPLE, "The subscription"),
                                  **error_responses("400", "404", "406", "503")}},
            "patch": {"operationId": "updateCSRSubscription", "tags": tag,
                      "summary": "Update a csource subscription / 登録購読の更新",
                      "description": "The given members replace the stored ones.",
                      "parameters": [TENANT, LINK],
                      "requestBody": {"required": True, "content": {
                          m: {"schema": {"type": "object"}} for m in (JSON, JSON_LD, MERGE_PATCH)}},
                      "responses": {"204": {"description": "Updated"},
                                    **error_responses("400", "404", "413", "415", "422", "503")}},
            "delete": {"operationId": "deleteCSRSubscription", "tags": tag,
                       "summary": "Delete a csource subscription / 登録購読の削除",
                       "description": "No more csourceNotifications.",
                       "parameters": [TENANT],
                       "responses": {"204": {"description": "Deleted"},
                                     **error_responses("400", "404", "503")}}},
    }
