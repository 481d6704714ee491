"""The device registry: service groups and devices as store documents, cached for the hot path.

Every group and device is a store document (kinds ``iot-group`` / ``iot-device``, tenant = the
``fiware-service``), so it survives restarts and is shared by every node using the same database.
The registry keeps all of them in memory, indexed the way the southbound needs them (by API key
and device id), because each measurement must find its device without a database read.  A miss
reads the store again before giving up, so a device provisioned through another node is found.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cityos.assets.devices.model import IotError

GROUP_KIND = "iot-group"
DEVICE_KIND = "iot-device"

Listener = Callable[[str, str], None]   # (tenant, device_id): the device changed or went away


def group_key(resource: str, apikey: str) -> str:
    """The document id of a group: groups are unique by (resource, apikey)."""
    return f"{resource}|{apikey}"


class DeviceRegistry:
    """Groups and devices of every tenant, in memory, backed by store documents."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.groups: dict[tuple[str, str], dict[str, Any]] = {}     # (tenant, key) -> group
        self.devices: dict[tuple[str, str], dict[str, Any]] = {}    # (tenant, id) -> device
        self._by_apikey: dict[str, dict[str, Any]] = {}             # apikey -> group
        self._by_key: dict[tuple[str, str], dict[str, Any]] = {}    # (apikey, id) -> device
        self.listeners: list[Listener] = []

    async def load(self) -> None:
        """Read every group and device from the store (at start-up)."""
        self.groups.clear()
        self.devices.clear()
        self._by_apikey.clear()
        self._by_key.clear()
        for doc in await self.store.list_documents(GROUP_KIND):
            self._index_group(doc.pop("_tenant"), doc)
        for doc in await self.store.list_documents(DEVICE_KIND):
            self._index_device(doc.pop("_tenant"), doc)

    # -- indexes ---------------------------------------------------------------------------------
    def _index_group(self, tenant: str, group: dict[str, Any]) -> None:
        self.groups[(tenant, group_key(group["resource"], group["apikey"]))] = group
        self._by_apikey[group["apikey"]] = group

    def _index_device(self, tenant: str, device: dict[str, Any]) -> None:
        old = self.devices.get((tenant, device["device_id"]))
        if old is not None:
            self._by_key.pop((old.get("apikey", ""), old["device_id"]), None)
        self.devices[(tenant, device["device_id"])] = device
        self._by_key[(device.get("apikey", ""), device["device_id"])] = device
        for listener in self.listeners:
            listener(tenant, device["device_id"])

    def _unindex_device(self, tenant: str, device_id: str) -> None:
        old = self.devices.pop((tenant, device_id), None)
        if old is not None:
            self._by_key.pop((old.get("apikey", ""), device_id), None)
        for listener in self.listeners:
            listener(tenant, device_id)

    # -- the hot path ----------------------------------------------------------------------------
    def group_for(self, apikey: str) -> dict[str, Any] | None:
        """The service group of an API key, if any."""
        return self._by_apikey.get(apikey)

    def device_for(self, apikey: str, device_id: str) -> dict[str, Any] | None:
        """The device a southbound message names (API key + device id), from memory."""
        device = self._by_key.get((apikey, device_id))
        if device is None and apikey not in self._by_apikey:
            # a device provisioned without a group answers to any key it was given, or none
            device = self._by_key.get(("", device_id))
        return device

    async def refresh_device(self, tenant: str, device_id: str) -> dict[str, Any] | None:
        """Re-read one device from the store (another node may have provisioned it)."""
        doc: dict[str, Any] | None = await self.store.get_document(DEVICE_KIND, tenant, device_id)
        if doc is None:
            # not unindexed: this read may have started before a concurrent provisioning
            # committed, and forgetting that device would provision it twice
            return None
        doc.pop("_tenant", None)
        self._index_device(tenant, doc)
        return doc

    # -- groups ----------------------------------------------------------------------------------
    async def add_group(self, tenant: str, group: dict[str, Any]) -> None:
        """Store a new group; ``DUPLICATE_GROUP`` when its (resource, apikey) is taken."""
        owner = self._by_apikey.get(group["apikey"])
        if owner is not None and owner["resource"] == group["resource"] and \
                await self.store.get_document(GROUP_KIND, owner["service"], group_key(
                    owner["resource"], owner["apikey"])) is None:
            self._drop_group(owner["service"], owner)    # removed through another node
            owner = None
        if owner is not None and owner["resource"] == group["resource"]:
            raise IotError("DUPLICATE_GROUP", "A device configuration already exists for resource "
                           f"{group['resource']} and API Key {group['apikey']}", 409)
        key = group_key(group["resource"], group["apikey"])
        if not await self.store.put_document(GROUP_KIND, tenant, key, group, create=True):
            raise IotError("DUPLICATE_GROUP", f"a group for {key} already exists", 409)
        self._index_group(tenant, group)

    async def replace_group(self, tenant: str, group: dict[str, Any]) -> None:
        """Store a changed group (its resource and apikey unchanged)."""
        key = group_key(group["resource"], group["apikey"])
        await self.store.put_document(GROUP_KIND, tenant, key, group)
        self._index_group(tenant, group)

    async def remove_group(self, tenant: str, group: dict[str, Any]) -> None:
        """Forget a group (its devices stay provisioned)."""
        await self.store.delete_document(GROUP_KIND, tenant,
                                         group_key(group["resource"], group["apikey"]))
        self._drop_group(tenant, group)

    def _drop_group(self, tenant: str, group: dict[str, Any]) -> None:
        self.groups.pop((tenant, group_key(group["resource"], group["apikey"])), None)
        if self._by_apikey.get(group["apikey"]) is group:
            del self._by_apikey[group["apikey"]]

    def tenant_groups(self, tenant: str, service_path: str | None = None) -> list[dict[str, Any]]:
        """The groups of one tenant (and service path, unless ``None`` or ``/*``)."""
        return [g for (t, _k), g in self.groups.items()
                if t == tenant and (service_path in (None, "/*") or g["subservice"] == service_path)]

    # -- devices ---------------------------------------------------------------------------------
    async def add_device(self, tenant: str, device: dict[str, Any]) -> None:
        """Store a new device; ``DUPLICATE_DEVICE_ID`` when the id is taken in the tenant."""
        if not await self.store.put_document(DEVICE_KIND, tenant, device["device_id"], device,
                                             create=True):
            raise IotError("DUPLICATE_DEVICE_ID", "A device with the same pair (Service, DeviceId)"
                           f" was found: {tenant or '(default)'}, {device['device_id']}", 409)
        self._index_device(tenant, device)

    async def replace_device(self, tenant: str, device: dict[str, Any]) -> None:
        """Store a changed device."""
        await self.store.put_document(DEVICE_KIND, tenant, device["device_id"], device)
        self._index_device(tenant, device)

    async def remove_device(self, tenant: str, device_id: str) -> bool:
        """Forget a device; False when there was none."""
        gone: bool = await self.store.delete_document(DEVICE_KIND, tenant, device_id)
        self._unindex_device(tenant, device_id)
        return gone

    def tenant_devices(self, tenant: str, service_path: str | None = None) -> list[dict[str, Any]]:
        """The devices of one tenant (and service path, unless ``None`` or ``/*``)."""
        return [d for (t, _i), d in self.devices.items()
                if t == tenant and (service_path in (None, "/*") or d["service_path"] == service_path)]
