"""The device registry: service groups and devices as store documents, cached for the hot path.

Every group and device is a store document (kinds ``iot-group`` / ``iot-device``, tenant = the
``fiware-service``), so it survives restarts and is shared by every node using the same database.
The registry keeps all of them in memory, indexed the way the southbound needs them (by API key
and device id), because each measurement must find its device without a database read.  A miss
reads the store again before giving up, so a device provisioned through another node is found.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from cityos.assets.devices.model import IotError

log = logging.getLogger("cityos.devices")

GROUP_KIND = "iot-group"
DEVICE_KIND = "iot-device"

Listener = Callable[[str, str], None]   # (tenant, device_id): the device changed or went away


def group_key(resource: str, apikey: str) -> str:
    """The document id of a group: groups are unique by (resource, apikey)."""
    return f"{resource}|{apikey}"


class DeviceRegistry:
    """Groups and devices of every tenant, in memory, backed by store documents.

    An API key belongs to one tenant only (ADR 0010): the tenant of the groups using it, or of
    the group-less devices provisioned with it.  The southbound resolves apikey -> tenant ->
    device, so one tenant can never answer for (or take over) another tenant's devices.
    """

    def __init__(self, store: Any) -> None:
        self.store = store
        self.groups: dict[tuple[str, str], dict[str, Any]] = {}     # (tenant, key) -> group
        self.devices: dict[tuple[str, str], dict[str, Any]] = {}    # (tenant, id) -> device
        # apikey -> {resource: group}; every group of one key is in the same tenant
        self._by_apikey: dict[str, dict[str, dict[str, Any]]] = {}
        # apikey -> {(tenant, device id)}: devices provisioned with that key
        self._key_devices: dict[str, set[tuple[str, str]]] = {}
        self.listeners: list[Listener] = []
        self._writes = 0            # local changes; a reload racing one is skipped

    async def load(self) -> None:
        """Read every group and device from the store (at start-up, then periodically).

        Documents that are not valid (written by an older version, or by hand) are skipped and
        logged: one bad record must not stop the agent from starting.
        """
        writes = self._writes
        group_docs = await self.store.list_documents(GROUP_KIND)
        device_docs = await self.store.list_documents(DEVICE_KIND)
        if writes != self._writes:
            return      # changed here while reading: the next reload sees a consistent store
        old_devices = self.devices
        self.groups, self.devices = {}, {}
        self._by_apikey, self._key_devices = {}, {}
        for doc in group_docs:
            tenant = doc.pop("_tenant", "")
            if _valid_group(doc):
                self._index_group(tenant, doc)
            else:
                log.warning("device registry: skipping invalid group document in tenant %r: %s",
                            tenant, str(doc)[:200])
        for doc in device_docs:
            tenant = doc.pop("_tenant", "")
            if _valid_device(doc):
                self.devices[(tenant, doc["device_id"])] = doc
                self._index_device_key(tenant, doc)
            else:
                log.warning("device registry: skipping invalid device document in tenant %r: %s",
                            tenant, str(doc)[:200])
        for key in set(old_devices) | set(self.devices):
            if old_devices.get(key) != self.devices.get(key):
                self._notify(*key)

    # -- indexes ---------------------------------------------------------------------------------
    def _notify(self, tenant: str, device_id: str) -> None:
        for listener in self.listeners:
            listener(tenant, device_id)

    def _index_group(self, tenant: str, group: dict[str, Any]) -> None:
        self.groups[(tenant, group_key(group["resource"], group["apikey"]))] = group
        self._by_apikey.setdefault(group["apikey"], {})[group["resource"]] = group

    def _index_device_key(self, tenant: str, device: dict[str, Any]) -> None:
        if device.get("apikey"):
            self._key_devices.setdefault(device["apikey"], set()).add(
                (tenant, device["device_id"]))

    def _unindex_device_key(self, tenant: str, device: dict[str, Any]) -> None:
        keyed = self._key_devices.get(device.get("apikey") or "")
        if keyed is not None:
            keyed.discard((tenant, device["device_id"]))
            if not keyed:
                del self._key_devices[device["apikey"]]

    def _index_device(self, tenant: str, device: dict[str, Any]) -> None:
        old = self.devices.get((tenant, device["device_id"]))
        if old is not None:
            self._unindex_device_key(tenant, old)
        self.devices[(tenant, device["device_id"])] = device
        self._index_device_key(tenant, device)
        self._notify(tenant, device["device_id"])

    def _unindex_device(self, tenant: str, device_id: str) -> None:
        old = self.devices.pop((tenant, device_id), None)
        if old is not None:
            self._unindex_device_key(tenant, old)
        self._notify(tenant, device_id)

    def tenant_of_key(self, apikey: str) -> str | None:
        """The tenant an API key belongs to (through its groups, else its devices), if any."""
        if not apikey:
            return None
        groups = self._by_apikey.get(apikey)
        if groups:
            return str(next(iter(groups.values()))["service"])
        keyed = self._key_devices.get(apikey)
        return next(iter(keyed))[0] if keyed else None

    def check_key_owner(self, tenant: str, apikey: Any) -> None:
        """Refuse an API key another tenant already uses (409 ``DUPLICATE_GROUP``)."""
        if isinstance(apikey, str) and apikey:
            owner = self.tenant_of_key(apikey)
            if owner is not None and owner != tenant:
                raise IotError("DUPLICATE_GROUP", f"the API key {apikey} is used by another "
                               "service; choose another one", 409)

    # -- the hot path ----------------------------------------------------------------------------
    def group_for(self, apikey: str, resource: str | None = None) -> dict[str, Any] | None:
        """The service group of an API key (for ``resource`` when given and known), if any."""
        groups = self._by_apikey.get(apikey)
        if not groups:
            return None
        if resource is not None and resource in groups:
            return groups[resource]
        return next(iter(groups.values()))

    def device_for(self, apikey: str, device_id: str) -> dict[str, Any] | None:
        """The device a southbound message names (API key + device id), from memory.

        The key names the tenant; there the device must have that key, or none at all (then it
        answers to the keys of its own tenant only, never to an unknown key).
        """
        tenant = self.tenant_of_key(apikey)
        if tenant is None:
            return None
        device = self.devices.get((tenant, device_id))
        if device is None or device.get("apikey") not in (apikey, "", None):
            return None
        return device

    async def refresh_device(self, tenant: str, device_id: str) -> dict[str, Any] | None:
        """Re-read one device from the store (another node may have provisioned it)."""
        doc: dict[str, Any] | None = await self.store.get_document(DEVICE_KIND, tenant, device_id)
        if doc is None:
            # not unindexed: this read may have started before a concurrent provisioning
            # committed, and forgetting that device would provision it twice
            return None
        doc.pop("_tenant", None)
        if not _valid_device(doc):
            return None
        self._writes += 1
        self._index_device(tenant, doc)
        return doc

    # -- groups ----------------------------------------------------------------------------------
    async def add_group(self, tenant: str, group: dict[str, Any]) -> None:
        """Store a new group; ``DUPLICATE_GROUP`` when its (resource, apikey) is taken, or its
        apikey belongs to another tenant."""
        owner = self.group_for(group["apikey"], group["resource"])
        if owner is not None and owner["resource"] == group["resource"] and \
                await self.store.get_document(GROUP_KIND, owner["service"], group_key(
                    owner["resource"], owner["apikey"])) is None:
            self._drop_group(owner["service"], owner)    # removed through another node
            owner = None
        if owner is not None and owner["resource"] == group["resource"]:
            raise IotError("DUPLICATE_GROUP", "A device configuration already exists for resource "
                           f"{group['resource']} and API Key {group['apikey']}", 409)
        self.check_key_owner(tenant, group["apikey"])
        key = group_key(group["resource"], group["apikey"])
        self._writes += 1
        if not await self.store.put_document(GROUP_KIND, tenant, key, group, create=True):
            raise IotError("DUPLICATE_GROUP", f"a group for {key} already exists", 409)
        self._index_group(tenant, group)

    async def replace_group(self, tenant: str, group: dict[str, Any]) -> None:
        """Store a changed group (its resource and apikey unchanged)."""
        key = group_key(group["resource"], group["apikey"])
        self._writes += 1
        await self.store.put_document(GROUP_KIND, tenant, key, group)
        self._index_group(tenant, group)

    async def remove_group(self, tenant: str, group: dict[str, Any]) -> None:
        """Forget a group (its devices stay provisioned)."""
        self._writes += 1
        await self.store.delete_document(GROUP_KIND, tenant,
                                         group_key(group["resource"], group["apikey"]))
        self._drop_group(tenant, group)

    def _drop_group(self, tenant: str, group: dict[str, Any]) -> None:
        self.groups.pop((tenant, group_key(group["resource"], group["apikey"])), None)
        groups = self._by_apikey.get(group["apikey"], {})
        if groups.get(group["resource"]) is group:
            del groups[group["resource"]]
        if not groups:
            self._by_apikey.pop(group["apikey"], None)

    def tenant_groups(self, tenant: str, service_path: str | None = None) -> list[dict[str, Any]]:
        """The groups of one tenant (and service path, unless ``None`` or ``/*``)."""
        return [g for (t, _k), g in self.groups.items()
                if t == tenant and (service_path in (None, "/*") or g["subservice"] == service_path)]

    # -- devices ---------------------------------------------------------------------------------
    async def add_device(self, tenant: str, device: dict[str, Any]) -> None:
        """Store a new device; ``DUPLICATE_DEVICE_ID`` when the id is taken in the tenant."""
        self.check_key_owner(tenant, device.get("apikey"))
        self._writes += 1
        if not await self.store.put_document(DEVICE_KIND, tenant, device["device_id"], device,
                                             create=True):
            raise IotError("DUPLICATE_DEVICE_ID", "A device with the same pair (Service, DeviceId)"
                           f" was found: {tenant or '(default)'}, {device['device_id']}", 409)
        self._index_device(tenant, device)

    async def replace_device(self, tenant: str, device: dict[str, Any]) -> None:
        """Store a changed device."""
        self.check_key_owner(tenant, device.get("apikey"))
        self._writes += 1
        await self.store.put_document(DEVICE_KIND, tenant, device["device_id"], device)
        self._index_device(tenant, device)

    async def remove_device(self, tenant: str, device_id: str) -> bool:
        """Forget a device; False when there was none."""
        self._writes += 1
        gone: bool = await self.store.delete_document(DEVICE_KIND, tenant, device_id)
        self._unindex_device(tenant, device_id)
        return gone

    def tenant_devices(self, tenant: str, service_path: str | None = None) -> list[dict[str, Any]]:
        """The devices of one tenant (and service path, unless ``None`` or ``/*``)."""
        return [d for (t, _i), d in self.devices.items()
                if t == tenant and (service_path in (None, "/*") or d["service_path"] == service_path)]


def _valid_group(doc: Any) -> bool:
    """Whether a stored group document has what the indexes need."""
    return (isinstance(doc, dict) and all(isinstance(doc.get(k), str) and doc[k]
                                          for k in ("apikey", "resource"))
            and all(isinstance(doc.get(k), str) for k in ("service", "subservice")))


def _valid_device(doc: Any) -> bool:
    """Whether a stored device document has what the indexes and the agent need."""
    return (isinstance(doc, dict) and isinstance(doc.get("device_id"), str)
            and bool(doc["device_id"]) and isinstance(doc.get("apikey", ""), str | None)
            and isinstance(doc.get("entity_type"), str) and isinstance(doc.get("entity_name"), str)
            and isinstance(doc.get("service_path", "/"), str))
