"""Devices and service groups as the FIWARE IoT Agent provisioning API describes them (AS-DV-1).

Both are kept as plain JSON objects in the FIWARE shape (what ``GET /iot/devices`` returns), so a
document read back from the store is already the API answer.  :func:`check_device` and
:func:`check_group` validate a provisioning body and fill in defaults; errors are
:class:`IotError` with the FIWARE error ``name`` and HTTP status.
"""

from __future__ import annotations

import re
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cityos.core.fiware import FiwareHeaderError, tenant_of_service, write_service_path

UL = "PDI-IoTA-UltraLight"
JSON = "PDI-IoTA-JSON"
PROTOCOLS = {UL, JSON, "IoTA-UL", "IoTA-JSON"}
TRANSPORTS = {"HTTP", "MQTT"}
DEFAULT_RESOURCE = "/iot/d"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_:.\-]{0,255}$")
_ID = re.compile(r"^[A-Za-z0-9_:.\-]{1,256}$")
RESERVED = frozenset({"id", "type", "@context", "createdAt", "modifiedAt"})

DEVICE_KEYS = {"device_id", "service", "service_path", "entity_name", "entity_type", "timezone",
               "timestamp", "apikey", "endpoint", "protocol", "transport", "attributes", "lazy",
               "commands", "static_attributes", "internal_attributes", "explicitAttrs",
               "ngsiVersion", "polling", "location", "expected_interval", "payloadType",
               "autoprovision"}
GROUP_KEYS = {"apikey", "resource", "entity_type", "attributes", "lazy", "commands",
              "static_attributes", "internal_attributes", "explicitAttrs", "timezone", "cbroker",
              "trust", "service", "subservice", "timestamp", "autoprovision", "description",
              "entityNameExp", "ngsiVersion", "transport", "protocol", "expected_interval",
              "location", "defaultEntityNameConjunction"}


class IotError(Exception):
    """A FIWARE IoT Agent error: ``{"name": ..., "message": ...}`` with an HTTP status."""

    def __init__(self, name: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.name = name
        self.message = message
        self.status = status

    def body(self) -> dict[str, str]:
        """The error body the FIWARE IoT Agents send."""
        return {"name": self.name, "message": self.message}


def _syntax(message: str) -> IotError:
    return IotError("WRONG_SYNTAX", message, 400)


def check_tenant(service: str, service_path: str) -> tuple[str, str]:
    """The (service, service path) of the fiware-service headers, validated; the service is
    lower-cased as the NGSIv2 face does."""
    # the same rules as the NGSI v2 face (cityos/core/fiware.py), so v2 clients find the devices
    try:
        return tenant_of_service(service), write_service_path(service_path)
    except FiwareHeaderError as exc:
        raise IotError("BAD_REQUEST", f"invalid fiware-service / fiware-servicepath: {exc}") from None


def _attribute(raw: Any, where: str, *, command: bool = False) -> dict[str, Any]:
    # expressions are checked by the IoT agent's parser when the device is compiled (ingest)
    if not isinstance(raw, dict):
        raise _syntax(f"{where}: each attribute must be a JSON object")
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise _syntax(f"{where}: attribute name {str(name)[:60]!r} is missing or invalid")
    if name in RESERVED:
        raise _syntax(f"{where}: {name!r} cannot be an attribute name")
    kind = raw.get("type", "Text" if command else None)
    if not isinstance(kind, str) or not kind:
        raise _syntax(f"{where}: attribute {name!r} needs a type")
    out = dict(raw)
    out["type"] = kind
    object_id = raw.get("object_id", name)
    if not isinstance(object_id, str) or not object_id or "|" in object_id:
        raise _syntax(f"{where}: attribute {name!r} has an invalid object_id")
    if "object_id" in raw or not command:
        out["object_id"] = object_id
    for key in ("expression", "unitCode", "sourceUnit"):
        if key in raw and not isinstance(raw[key], str):
            raise _syntax(f"{where}: {key} of attribute {name!r} must be a string")
    return out


def _attributes(body: dict[str, Any], key: str, *, command: bool = False) -> list[dict[str, Any]]:
    raw = body.get(key, [])
    if not isinstance(raw, list):
        raise _syntax(f"{key} must be an array")
    items = [_attribute(a, key, command=command) for a in raw]
    names = [a["name"] for a in items]
    if len(set(names)) != len(names):
        raise _syntax(f"{key} names an attribute twice")
    return items


def _common(body: dict[str, Any], out: dict[str, Any]) -> None:
    """Fields devices and groups share: attributes, commands, static attributes, options."""
    out["attributes"] = _attributes(body, "attributes")
    out["lazy"] = _attributes(body, "lazy")
    out["commands"] = _attributes(body, "commands", command=True)
    static = _attributes(body, "static_attributes")
    for item in static:
        if "value" not in item:
            raise _syntax(f"static attribute {item['name']!r} needs a value")
    out["static_attributes"] = static
    if "explicitAttrs" in body and not isinstance(body["explicitAttrs"], bool):
        raise _syntax("explicitAttrs must be true or false (expressions are not supported)")
    if "timezone" in body:
        try:
            ZoneInfo(str(body["timezone"]))
        except (ZoneInfoNotFoundError, ValueError):
            raise _syntax(f"unknown timezone {str(body['timezone'])[:60]!r}") from None
    interval = body.get("expected_interval")
    if interval is not None and (isinstance(interval, bool) or not isinstance(interval, int | float)
                                 or interval <= 0):
        raise _syntax("expected_interval must be a positive number of seconds")
    location = body.get("location")
    if location is not None and not _valid_location(location):
        raise _syntax("location must be {\"lat\": ..., \"lon\": ...} (numbers for a fixed place, "
                      "measure names to read them from measures) or a GeoJSON Point")


def _valid_location(location: Any) -> bool:
    if not isinstance(location, dict):
        return False
    if location.get("type") == "Point":
        coords = location.get("coordinates")
        return isinstance(coords, list) and len(coords) in (2, 3) and all(
            isinstance(c, int | float) and not isinstance(c, bool) for c in coords)
    lat, lon = location.get("lat"), location.get("lon")
    both_numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (lat, lon))
    both_names = all(isinstance(v, str) and v for v in (lat, lon))
    return both_numbers or both_names


def check_group(body: Any, service: str, service_path: str) -> dict[str, Any]:
    """A validated service group (``/iot/services`` entry)."""
    if not isinstance(body, dict):
        raise _syntax("each service must be a JSON object")
    unknown = set(body) - GROUP_KEYS
    if unknown:
        raise _syntax(f"unknown service field(s): {', '.join(sorted(unknown))}")
    apikey = body.get("apikey")
    if not isinstance(apikey, str) or not _ID.match(apikey):
        raise _syntax("a service needs an apikey (letters, digits, _ : . -)")
    resource = body.get("resource", DEFAULT_RESOURCE)
    if not isinstance(resource, str) or not resource.startswith("/"):
        raise _syntax("resource must be a path such as /iot/d")
    entity_type = body.get("entity_type", "Thing")
    if not isinstance(entity_type, str) or not _NAME.match(entity_type):
        raise _syntax("entity_type must be a valid type name")
    out: dict[str, Any] = {k: v for k, v in body.items() if k in GROUP_KEYS}
    out.update(apikey=apikey, resource=resource, entity_type=entity_type, service=service,
               subservice=service_path)
    _common(body, out)
    return out


def check_device(body: Any, service: str, service_path: str,
                 group: dict[str, Any] | None = None) -> dict[str, Any]:
    """A validated device (``/iot/devices`` entry), with defaults taken from its ``group``."""
    if not isinstance(body, dict):
        raise _syntax("each device must be a JSON object")
    unknown = set(body) - DEVICE_KEYS
    if unknown:
        raise _syntax(f"unknown device field(s): {', '.join(sorted(unknown))}")
    device_id = body.get("device_id")
    if not isinstance(device_id, str) or not _ID.match(device_id):
        raise _syntax("a device needs a device_id (letters, digits, _ : . -; at most 256)")
    entity_type = body.get("entity_type") or (group or {}).get("entity_type") or "Thing"
    if not isinstance(entity_type, str) or not _NAME.match(entity_type):
        raise _syntax("entity_type must be a valid type name")
    entity_name = body.get("entity_name") or f"{entity_type}:{device_id}"
    if not isinstance(entity_name, str) or len(entity_name) > 1024:
        raise _syntax("entity_name must be a string")
    protocol = body.get("protocol", JSON if (group or {}).get("resource") == "/iot/json" else UL)
    if protocol not in PROTOCOLS:
        raise _syntax(f"protocol must be one of {', '.join(sorted(PROTOCOLS))}")
    transport = body.get("transport", (group or {}).get("transport", "HTTP"))
    if transport not in TRANSPORTS:
        raise _syntax("transport must be HTTP or MQTT")
    endpoint = body.get("endpoint")
    if endpoint is not None and (not isinstance(endpoint, str)
                                 or not endpoint.startswith(("http://", "https://"))):
        raise _syntax("endpoint must be an http(s) URL")
    apikey = body.get("apikey")
    if apikey is not None and (not isinstance(apikey, str) or (apikey and not _ID.match(apikey))):
        raise _syntax("apikey must be a string of letters, digits, _ : . - (at most 256)")
    out: dict[str, Any] = {k: v for k, v in body.items() if k in DEVICE_KEYS}
    out.update(device_id=device_id, entity_name=entity_name, entity_type=entity_type,
               protocol=JSON if protocol in (JSON, "IoTA-JSON") else UL, transport=transport,
               service=service, service_path=service_path)
    if group is not None and "apikey" not in body:
        out["apikey"] = group["apikey"]
    _common(body, out)
    return out


def entity_id_of(device: dict[str, Any]) -> str:
    """The NGSI-LD id of a device's entity: ``entity_name`` when it is a URI, else a URN."""
    name: str = device["entity_name"]
    if re.match(r"^[A-Za-z][A-Za-z0-9+.\-]*:", name) and not name.startswith(
            f"{device['entity_type']}:"):
        return name
    return f"urn:ngsi-ld:{device['entity_type']}:{device['device_id']}"
