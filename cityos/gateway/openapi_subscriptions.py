"""OpenAPI 3.1 paths of the NGSI-LD subscription API (``/ngsi-ld/v1/subscriptions``, SI-CS-1).

:func:`subscription_paths` returns the ``paths`` entries, operationIds equal to the Starlette route
names of ``cityos.data.ngsild.subscriptions.ROUTES``; shared parameters (``NGSILD-Tenant``,
``Link``, ``limit``, ``offset``, ``count``) and error responses are referenced from the components
that :mod:`~cityos.gateway.openapi_ngsild` builds.  The Subscription schema is described here,
from the validation in ``subscriptions/parse.py`` and ``parse_notification.py``.
"""

from __future__ import annotations

from typing import Any

from cityos.gateway.openapi_params import problem_ref

Schema = dict[str, Any]
JSON, JSON_LD, MERGE_PATCH = "application/json", "application/ld+json", "application/merge-patch+json"
TAG = "Subscriptions"
TRIGGERS = ["entityCreated", "entityUpdated", "entityDeleted", "attributeCreated",
            "attributeUpdated", "attributeDeleted"]

_NAMES: Schema = {"type": "array", "minItems": 1, "items": {"type": "string"}}
_KEY_VALUES: Schema = {"type": "array", "items": {
    "type": "object", "required": ["key", "value"], "additionalProperties": False,
    "properties": {"key": {"type": "string", "pattern": r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$"},
                   "value": {"type": "string"}}}}
ENDPOINT: Schema = {
    "type": "object", "required": ["uri"], "additionalProperties": False,
    "properties": {
        "uri": {"type": "string", "format": "uri",
                "description": "http(s):// or mqtt(s)://host:port/topic. Private and loopback "
                               "addresses are refused unless CITYOS_NOTIFICATION_ALLOW lists them."},
        "accept": {"enum": [JSON, JSON_LD], "default": JSON},
        "receiverInfo": {**_KEY_VALUES, "description": "Sent as HTTP headers (MQTT: user properties)."},
        "notifierInfo": {**_KEY_VALUES, "description": "e.g. MQTT-QoS (0, 1, 2), MQTT-Version."},
        "timeout": {"type": "number", "minimum": 0},
        "cooldown": {"type": "number", "minimum": 0},
    }}
NOTIFICATION: Schema = {
    "type": "object", "required": ["endpoint"],
    "properties": {
        "attributes": {**_NAMES, "description": "Only these attributes are notified."},
        "format": {"enum": ["normalized", "concise", "keyValues"], "default": "normalized"},
        "sysAttrs": {"type": "boolean", "default": False},
        "showChanges": {"type": "boolean", "default": False,
                        "description": "Changed attributes carry previousValue (previousObject ...)."},
        "pick": {**_NAMES, "description": "Only these entity members (attribute names, `id`, "
                                          "`type`); not with attributes or omit."},
        "omit": {**_NAMES, "description": "Leave these entity members out (attribute names, `id`, "
                                          "`type`); not with attributes or pick."},
        "join": {"enum": ["flat", "inline", "@none"],
                 "description": "Linked entities: after the notified ones in data (flat) or "
                                "inside their relationships (inline)."},
        "joinLevel": {"type": "integer", "minimum": 1, "maximum": 10, "default": 1,
                      "description": "How many relationship hops join follows."},
        "endpoint": ENDPOINT,
        "status": {"enum": ["ok", "failed"], "readOnly": True},
        "timesSent": {"type": "integer", "readOnly": True},
        "timesFailed": {"type": "integer", "readOnly": True},
        "lastNotification": {"type": "string", "format": "date-time", "readOnly": True},
        "lastSuccess": {"type": "string", "format": "date-time", "readOnly": True},
        "lastFailure": {"type": "string", "format": "date-time", "readOnly": True},
    }}
SUBSCRIPTION: Schema = {
    "type": "object", "required": ["type", "notification"],
    "description": "An NGSI-LD Subscription (ETSI GS CIM 009 5.2.12). Needs entities or "
                   "watchedAttributes; timeInterval excludes watchedAttributes and throttling.",
    "properties": {
        "id": {"type": "string", "format": "uri"},
        "type": {"const": "Subscription"},
        "subscriptionName": {"type": "string"},
        "description": {"type": "string"},
        "entities": {"type": "array", "minItems": 1, "items": {
            "type": "object", "minProperties": 1, "additionalProperties": False,
            "properties": {"id": {"type": "string", "format": "uri"},
                           "idPattern": {"type": "string"},
                           "type": {"type": "string",
                                    "description": "A type expression: A,B any of; A;B all of"}}}},
        "watchedAttributes": _NAMES,
        "notificationTrigger": {"type": "array", "minItems": 1, "items": {"enum": TRIGGERS},
                                "default": ["attributeCreated", "attributeUpdated"]},
        "timeInterval": {"type": "number", "exclusiveMinimum": 0},
        "q": {"type": "string"},
        "geoQ": {"type": "object", "required": ["georel", "geometry", "coordinates"],
                 "properties": {"georel": {"type": "string"}, "geometry": {"type": "string"},
                                "coordinates": {"anyOf": [{"type": "array"}, {"type": "string"}]},
                                "geoproperty": {"type": "string"}}},
        "scopeQ": {"type": "string"},
        "isActive": {"type": "boolean", "default": True},
        "expiresAt": {"type": "string", "format": "date-time"},
        "throttling": {"type": "number", "exclusiveMinimum": 0},
        "lang": {"type": "string"},
        "jsonldContext": {"type": "string", "format": "uri"},
        "datasetId": {"type": "array", "minItems": 1, "items": {"type": "string"},
                      "description": "Only attribute instances of these datasetIds (URIs; "
                                     "`@none` = the default instance) are notified."},
        "notification": NOTIFICATION,
        "status": {"enum": ["active", "paused", "expired"], "readOnly": True},
        "createdAt": {"type": "string", "format": "date-time", "readOnly": True},
        "modifiedAt": {"type": "string", "format": "date-time", "readOnly": True},
    }}

SUB_ID = "urn:ngsi-ld:Subscription:kobe-parking"
EXAMPLE: Schema = {
    "id": SUB_ID, "type": "Subscription",
    "subscriptionName": "三宮の駐車場の空き / Sannomiya parking availability",
    "entities": [{"type": "ParkingSpot"}],
    "watchedAttributes": ["status"],
    "q": "status==\"free\"",
    "geoQ": {"georel": "near;maxDistance==1000", "geometry": "Point",
             "coordinates": [135.1955, 34.6946]},
    "expiresAt": "2027-03-31T15:00:00.000Z",
    "notification": {"attributes": ["status", "name"], "format": "keyValues",
                     "endpoint": {"uri": "https://receiver.example.jp/notify",
                                  "accept": JSON,
                                  "receiverInfo": [{"key": "X-Kobe-Key", "value": "secret"}]}},
}
MQTT_EXAMPLE: Schema = {
    "type": "Subscription", "entities": [{"type": "WaterLevelObserved"}],
    "notificationTrigger": ["attributeUpdated", "entityCreated"],
    "notification": {"endpoint": {"uri": "mqtt://broker.example.jp:1883/kobe/river",
                                  "notifierInfo": [{"key": "MQTT-QoS", "value": "1"}]}},
}
READ_EXAMPLE: Schema = {**EXAMPLE, "status": "active",
                        "notification": {**EXAMPLE["notification"], "status": "ok",
                                         "timesSent": 12, "timesFailed": 0,
                                         "lastNotification": "2026-11-25T00:00:00.000Z",
                                         "lastSuccess": "2026-11-25T00:00:00.000Z"}}

# Building blocks shared with the other subscription-like API, /csourceSubscriptions and
# /csourceRegistrations (openapi_csource), so that both describe tenants, paging and errors alike.
TENANT: Schema = {"$ref": "#/components/parameters/NGSILD-Tenant"}
LINK: Schema = {"$ref": "#/components/parameters/Link"}
SYS_ATTRS: Schema = {"name": "options", "in": "query", "required": False,
                     "description": "`sysAttrs` adds createdAt and modifiedAt.",
                     "schema": {"enum": ["sysAttrs"]}}
SUB_ID_PARAM: Schema = {"name": "sub_id", "in": "path", "required": True,
                        "description": "The subscription id (a URI).", "schema": {"type": "string"}}
LOCATION_HEADER: Schema = {"Location": {"$ref": "#/components/headers/Location"}}


def param_ref(name: str) -> Schema:
    """A reference to the shared component parameter ``name`` (``limit``, ``type``, ...)."""
    return {"$ref": f"#/components/parameters/{name}"}


def ok_response(schema: Schema, example: Any, description: str, paged: bool = False) -> Schema:
    """A 200 response in JSON and JSON-LD with one example; ``paged`` adds the count header."""
    headers: Schema = {"Link": {"$ref": "#/components/headers/Link"}}
    if paged:
        headers["NGSILD-Results-Count"] = {"$ref": "#/components/headers/NGSILD-Results-Count"}
    return {"description": description, "headers": headers, "content": {
        m: {"schema": schema, "examples": {"kobe": {"summary": "神戸市", "value": example}}}
        for m in (JSON, JSON_LD)}}


def error_responses(*statuses: str) -> dict[str, Schema]:
    """The shared problem-details responses of these statuses."""
    return {status: problem_ref(status) for status in statuses}


def _body(examples: dict[str, Schema], media: tuple[str, ...] = (JSON, JSON_LD)) -> Schema:
    return {"required": True, "content": {
        m: {"schema": SUBSCRIPTION, "examples": examples} for m in media}}


def subscription_paths() -> dict[str, Any]:
    """The ``paths`` of the subscription API, to merge into the NGSI-LD OpenAPI document."""
    create = {
        "operationId": "createSubscription", "tags": [TAG],
        "summary": "Create a subscription / サブスクリプション作成",
        "description": "Validates the whole subscription (400 BadRequestData names the member at "
                       "fault), checks the endpoint against the SSRF policy, stores it and starts "
                       "matching. `expiresAt` may carry any offset (`+09:00`) and must be in the future.",
        "parameters": [TENANT, LINK],
        "requestBody": _body({"http": {"summary": "HTTP, keyValues, q and geoQ", "value": EXAMPLE},
                              "mqtt": {"summary": "MQTT endpoint", "value": MQTT_EXAMPLE}}),
        "responses": {"201": {"description": "Created; `Location` is /ngsi-ld/v1/subscriptions/{id}",
                              "headers": LOCATION_HEADER},
                      **error_responses("400", "409", "413", "415", "503")},
    }
    query = {
        "operationId": "querySubscription", "tags": [TAG],
        "summary": "List subscriptions / サブスクリプション一覧",
        "description": "The tenant's subscriptions, oldest first, paged with limit/offset; names are "
                       "compacted with the `Link` @context of the request.",
        "parameters": [TENANT, LINK, *map(param_ref, ("limit", "offset", "count")), SYS_ATTRS],
        "responses": {"200": ok_response({"type": "array", "items": SUBSCRIPTION},
                                         [READ_EXAMPLE], "One page of subscriptions", paged=True),
                      **error_responses("400", "403", "404", "406", "503")},
    }
    retrieve = {
        "operationId": "retrieveSubscription", "tags": [TAG],
        "summary": "Retrieve a subscription / サブスクリプション取得",
        "description": "The subscription as written, with `status` (active, paused, expired) and "
                       "the delivery counters in `notification` once something was sent.",
        "parameters": [TENANT, LINK, SYS_ATTRS],
        "responses": {"200": ok_response(SUBSCRIPTION, READ_EXAMPLE, "The subscription"),
                      **error_responses("400", "404", "406", "503")},
    }
    update = {
        "operationId": "updateSubscription", "tags": [TAG],
        "summary": "Update a subscription / サブスクリプション更新",
        "description": "Each member of the body replaces the stored one; `null` removes a member; "
                       "`notification` is merged member by member. The result is validated whole.",
        "parameters": [TENANT, LINK],
        "requestBody": {"required": True, "content": {
            m: {"schema": {"type": "object"}, "examples": {
                "pause": {"summary": "一時停止 / pause", "value": {"isActive": False}},
                "format": {"summary": "keyValues", "value": {"notification": {"format": "keyValues"}}}}}
            for m in (JSON, JSON_LD, MERGE_PATCH)}},
        "responses": {"204": {"description": "Updated"},
                      **error_responses("400", "404", "413", "415", "503")},
    }
    delete = {
        "operationId": "deleteSubscription", "tags": [TAG],
        "summary": "Delete a subscription / サブスクリプション削除",
        "description": "Stops notifications and forgets the subscription and its counters.",
        "parameters": [TENANT],
        "responses": {"204": {"description": "Deleted"}, **error_responses("400", "404", "503")},
    }
    return {
        "/ngsi-ld/v1/subscriptions": {"post": create, "get": query},
        "/ngsi-ld/v1/subscriptions/{sub_id}": {"parameters": [SUB_ID_PARAM], "get": retrieve,
                                               "patch": update, "delete": delete},
    }
