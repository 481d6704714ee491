"""Device actions: the one way the provisioning APIs, the native API and the CLI change devices.

Each action validates its whole input first (a bad entry rejects the request, nothing is stored),
then writes the device entities through the broker and the device documents through the registry.
The entity is written first: a device document never exists without its entity.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cityos.assets.devices.entities import device_entity, write_entities
from cityos.assets.devices.model import IotError, check_device, check_group, entity_id_of
from cityos.assets.devices.registry import DeviceRegistry
from cityos.core.problems import Problem
from cityos.data.ngsild import Broker
from cityos.data.ngsild.notify import EndpointPolicy


@dataclass
class Devices:
    """What the device actions need: the broker (entities) and the registry (documents)."""

    broker: Broker
    registry: DeviceRegistry
    # device id -> live state (last seen, online) kept by the state monitor; see state.py
    state: Any = None


def check_endpoint(devices: Devices, device: dict[str, Any]) -> None:
    """Refuse a command ``endpoint`` the notification SSRF policy forbids (400).

    Commands make CityOS POST to a URL the provisioning client chose and store the answer, so
    the same guard as for subscriptions applies (``CITYOS_NOTIFICATION_ALLOW`` / ``_DENY``);
    the sender resolves and checks the host again before each command.
    """
    endpoint = device.get("endpoint")
    if not endpoint:
        return
    try:
        EndpointPolicy.from_settings(devices.broker.settings).check(endpoint)
    except Problem as refused:
        raise IotError("WRONG_SYNTAX", f"endpoint refused: {refused.detail}", 400) from None


def _checked(devices: Devices, tenant: str, device: dict[str, Any]) -> dict[str, Any]:
    check_endpoint(devices, device)
    devices.registry.check_key_owner(tenant, device.get("apikey"))
    return device


def _group_of(devices: Devices, tenant: str, path: str, apikey: Any) -> dict[str, Any] | None:
    groups = devices.registry.tenant_groups(tenant)
    if isinstance(apikey, str):
        return next((g for g in groups if g["apikey"] == apikey), None)
    return next((g for g in groups if g["subservice"] == path), None)


async def add_groups(devices: Devices, tenant: str, path: str, bodies: list[Any]) -> None:
    """Add service groups (all validated before any is stored)."""
    groups = [check_group(body, tenant, path) for body in bodies]
    for group in groups:
        devices.registry.check_key_owner(tenant, group["apikey"])
    keys = [(g["resource"], g["apikey"]) for g in groups]
    if len(set(keys)) != len(keys):
        raise IotError("DUPLICATE_GROUP", "the request names one (resource, apikey) twice", 409)
    for group in groups:
        await devices.registry.add_group(tenant, group)


def _find_group(devices: Devices, tenant: str, path: str, resource: str | None,
                apikey: str | None) -> dict[str, Any]:
    if not resource or not apikey:
        raise IotError("MISSING_CONFIG_PARAMS", "resource and apikey query parameters are needed")
    for group in devices.registry.tenant_groups(tenant, path):
        if group["resource"] == resource and group["apikey"] == apikey:
            return group
    raise IotError("DEVICE_GROUP_NOT_FOUND", "Couldn't find device group for fields: "
                   f"resource={resource}, apikey={apikey}", 404)


async def update_group(devices: Devices, tenant: str, path: str, resource: str | None,
                       apikey: str | None, body: Any) -> None:
    """Change a group's fields (not its resource or apikey)."""
    group = _find_group(devices, tenant, path, resource, apikey)
    if not isinstance(body, dict):
        raise IotError("WRONG_SYNTAX", "the body must be a JSON object")
    if body.get("apikey", apikey) != apikey or body.get("resource", resource) != resource:
        raise IotError("WRONG_SYNTAX", "resource and apikey of a group cannot change")
    merged = {k: v for k, v in {**group, **body}.items() if k not in ("service", "subservice")}
    await devices.registry.replace_group(tenant, check_group(merged, tenant, group["subservice"]))


async def delete_group(devices: Devices, tenant: str, path: str, resource: str | None,
                       apikey: str | None, with_devices: bool) -> None:
    """Remove a group; with ``with_devices`` its devices too."""
    group = _find_group(devices, tenant, path, resource, apikey)
    if with_devices:
        for device in devices.registry.tenant_devices(tenant):
            if device.get("apikey") == group["apikey"]:
                await devices.registry.remove_device(tenant, device["device_id"])
    await devices.registry.remove_group(tenant, group)


async def add_devices(devices: Devices, tenant: str, path: str, bodies: list[Any]) -> list[str]:
    """Provision devices and create their entities; returns the entity ids."""
    checked: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
    for body in bodies:
        group = _group_of(devices, tenant, path, body.get("apikey") if isinstance(body, dict)
                          else None)
        checked.append((_checked(devices, tenant, check_device(body, tenant, path, group)),
                        group))
    ids = [d["device_id"] for d, _g in checked]
    if len(set(ids)) != len(ids):
        raise IotError("DUPLICATE_DEVICE_ID", "the request names one device_id twice", 409)
    for device, _group in checked:
        if (tenant, device["device_id"]) in devices.registry.devices and \
                await devices.registry.refresh_device(tenant, device["device_id"]) is not None:
            raise IotError("DUPLICATE_DEVICE_ID", "A device with the same pair (Service, "
                           f"DeviceId) was found: {tenant or '(default)'}, {device['device_id']}",
                           409)
    await write_entities(devices.broker, tenant, [device_entity(d, g) for d, g in checked])
    for device, _group in checked:
        await devices.registry.add_device(tenant, device)
    return [entity_id_of(d) for d, _g in checked]


def find_device(devices: Devices, tenant: str, device_id: str) -> dict[str, Any]:
    """One device, or ``DEVICE_NOT_FOUND``."""
    device = devices.registry.devices.get((tenant, device_id))
    if device is None:
        raise IotError("DEVICE_NOT_FOUND", f"No device was found with id:{device_id}", 404)
    return device


async def update_device(devices: Devices, tenant: str, device_id: str, body: Any) -> None:
    """Change a device's fields (``device_id`` stays); its entity gets new static data."""
    device = find_device(devices, tenant, device_id)
    if not isinstance(body, dict):
        raise IotError("WRONG_SYNTAX", "the body must be a JSON object")
    if body.get("device_id", device_id) != device_id:
        raise IotError("WRONG_SYNTAX", "device_id cannot change")
    merged = {k: v for k, v in {**device, **body}.items() if k not in ("service", "service_path")}
    group = _group_of(devices, tenant, device["service_path"], merged.get("apikey"))
    changed = _checked(devices, tenant, check_device(merged, tenant, device["service_path"],
                                                     group))
    await write_entities(devices.broker, tenant, [device_entity(changed, group)])
    await devices.registry.replace_device(tenant, changed)


async def remove_device(devices: Devices, tenant: str, device_id: str) -> None:
    """Deprovision a device (its entity and history stay, as with FIWARE's agents)."""
    find_device(devices, tenant, device_id)
    await devices.registry.remove_device(tenant, device_id)
