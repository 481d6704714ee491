"""AS  device management (AS-DV-1) and actuator commands (AS-CT-1).

Devices and service groups are provisioned through the FIWARE IoT Agent API (``/iot/services``,
``/iot/devices``) or the native API (``/assets/v1/devices``); each device has an NGSI-LD entity
carrying its measurements, its state (``deviceState``, ``dateLastValueReported``) and its
commands (``{cmd}``, ``{cmd}_status``, ``{cmd}_info``).

Public interface: the names in ``__all__``.
"""

from __future__ import annotations

from cityos.assets.devices.actions import Devices, add_devices, find_device, remove_device
from cityos.assets.devices.commands import CommandWatcher
from cityos.assets.devices.entities import (
    LAST_SEEN,
    OFFLINE,
    ONLINE,
    STATE,
    UNKNOWN,
    commands_of,
    device_entity,
    info_attr,
    scope_of,
    status_attr,
    write_entities,
)
from cityos.assets.devices.model import (
    JSON,
    RESERVED,
    UL,
    IotError,
    check_device,
    check_tenant,
    entity_id_of,
)
from cityos.assets.devices.native import ROUTES as _NATIVE
from cityos.assets.devices.provisioning import ROUTES as _PROVISIONING
from cityos.assets.devices.registry import DeviceRegistry
from cityos.assets.devices.state import DeviceState
from cityos.assets.devices.values import MeasureError, ngsi_attribute, point, to_utc

ROUTES = [*_PROVISIONING, *_NATIVE]

__all__ = ["JSON", "LAST_SEEN", "OFFLINE", "ONLINE", "RESERVED", "ROUTES", "STATE", "UL",
           "UNKNOWN", "CommandWatcher", "DeviceRegistry", "DeviceState", "Devices", "IotError",
           "MeasureError", "add_devices", "check_device", "check_tenant", "commands_of",
           "device_entity", "entity_id_of", "find_device", "info_attr", "ngsi_attribute", "point",
           "remove_device", "scope_of", "status_attr", "to_utc", "write_entities"]
