"""Device entities in the broker: created at provisioning, updated by state and command changes.

Every write goes through the broker's batch upsert action (``options=update``: attributes are
appended or overwritten, nothing else is touched), never over HTTP to the broker itself.
"""

from __future__ import annotations

from typing import Any

from cityos.assets.devices.model import entity_id_of
from cityos.assets.devices.values import MeasureError, ngsi_attribute, point
from cityos.core.fiware import scope_of_path
from cityos.core.problems import BadRequestData
from cityos.data.ngsild import Broker, batch_upsert

STATE = "deviceState"                    # Smart Data Models Device: online / offline / unknown
LAST_SEEN = "dateLastValueReported"      # Smart Data Models Device: when data last arrived
UNKNOWN, ONLINE, OFFLINE = "unknown", "online", "offline"


def status_attr(command: str) -> str:
    """The attribute holding a command's status (PENDING, DELIVERED, OK, ERROR, EXPIRED)."""
    return f"{command}_status"


def info_attr(command: str) -> str:
    """The attribute holding a command's result from the device."""
    return f"{command}_info"


async def write_entities(broker: Broker, tenant: str, bodies: list[dict[str, Any]]) -> None:
    """Upsert entity fragments in one store transaction; a rejected one raises its problem."""
    async def term_map_for(context: Any) -> Any:
        return await broker.resolver.term_map(context)

    result = await batch_upsert(broker, tenant, bodies, term_map_for, replace=False)
    if result.errors:
        error = result.errors[0]["error"]
        raise BadRequestData(f"entity {result.errors[0]['entityId']}: {error.get('detail')}")


def scope_of(device: dict[str, Any]) -> list[str] | None:
    """The NGSI-LD ``scope`` of a device's ``fiware-servicepath`` (none for ``/``): the NGSI v2
    face's rule, so a v2 client asking for the service path finds the entity."""
    return scope_of_path(device.get("service_path") or "/")


def device_entity(device: dict[str, Any], group: dict[str, Any] | None = None) -> dict[str, Any]:
    """The entity body a newly provisioned device starts with (static attributes, commands)."""
    body: dict[str, Any] = {"id": entity_id_of(device), "type": device["entity_type"],
                            STATE: {"type": "Property", "value": UNKNOWN}}
    scope = scope_of(device)
    if scope is not None:
        body["scope"] = scope
    zone = device.get("timezone")
    statics = [*(group or {}).get("static_attributes", []), *device.get("static_attributes", [])]
    try:
        for attr in statics:
            body[attr["name"]] = ngsi_attribute(attr["type"], attr["value"], zone=zone,
                                                unit_code=attr.get("unitCode"))
        location = device.get("location") or (group or {}).get("location")
        if isinstance(location, dict) and location.get("type") == "Point":
            body["location"] = {"type": "GeoProperty", "value": location}
        elif isinstance(location, dict) and not isinstance(location.get("lat"), str):
            body["location"] = {"type": "GeoProperty", "value": point(location["lat"],
                                                                      location["lon"])}
    except MeasureError as exc:
        raise BadRequestData(f"device {device['device_id']}: {exc}") from None
    for command in commands_of(device, group):
        body[command] = {"type": "Property", "value": ""}
        body[status_attr(command)] = {"type": "Property", "value": UNKNOWN.upper()}
        body[info_attr(command)] = {"type": "Property", "value": ""}
    return body


def commands_of(device: dict[str, Any], group: dict[str, Any] | None = None) -> list[str]:
    """The command names of a device, its group's included."""
    names = [c["name"] for c in (group or {}).get("commands", [])]
    names += [c["name"] for c in device.get("commands", [])]
    return list(dict.fromkeys(names))

