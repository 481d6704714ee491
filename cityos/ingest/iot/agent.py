"""The built-in IoT agent: device messages in, NGSI-LD attribute updates out (ED-IF-1, ED-DT-1).

HTTP routes and the MQTT consumer both call :meth:`IotAgent.ingest`, which finds the device (from
memory; autoprovisioning it when its service group allows), transforms each measure group and
waits until the writer made it durable.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from cityos.assets.devices import (
    LAST_SEEN,
    RESERVED,
    STATE,
    Devices,
    IotError,
    add_devices,
    ngsi_attribute,
)
from cityos.data.ngsild import utc_now
from cityos.ingest.iot.transform import CompiledDevice, TransformError, compile_device, to_attributes
from cityos.ingest.iot.writer import MeasurementWriter

log = logging.getLogger("cityos.iot")
MAX_MESSAGE = 1024 * 1024      # bytes of one southbound message (HTTP body or MQTT payload)
MAX_GROUPS = 100               # measure groups in one message


class IotAgent:
    """Resolves devices, transforms measures and hands them to the batching writer."""

    def __init__(self, devices: Devices, *, batch_size: int = 500, writers: int = 1) -> None:
        self.devices = devices
        self.writer = MeasurementWriter(devices.broker, batch_size=batch_size, writers=writers)
        self._compiled: dict[tuple[str, str], CompiledDevice] = {}
        self._provisioning: dict[tuple[str, str], asyncio.Lock] = {}
        devices.registry.listeners.append(self._forget)
        self.mqtt: Any = None          # the MQTT consumer, when a broker URL is set
        self.received = 0

    def _forget(self, tenant: str, device_id: str) -> None:
        self._compiled.pop((tenant, device_id), None)
        if self.devices.state is not None and (tenant, device_id) not in \
                self.devices.registry.devices:
            self.devices.state.forget(tenant, device_id)

    async def start(self) -> None:
        """Start the writer."""
        await self.writer.start()

    async def stop(self) -> None:
        """Flush and stop the writer."""
        await self.writer.stop()

    # -- devices ---------------------------------------------------------------------------------
    def _compile(self, device: dict[str, Any]) -> CompiledDevice:
        tenant = device["service"]
        key = (tenant, device["device_id"])
        compiled = self._compiled.get(key)
        if compiled is None:
            group = self.devices.registry.group_for(device.get("apikey") or "")
            if group is not None and group["service"] != tenant:
                group = None           # never another tenant's settings
            try:
                compiled = compile_device(tenant, device, group)
            except TransformError as exc:
                raise IotError("WRONG_SYNTAX", f"device {device['device_id']}: {exc}") from None
            self._compiled[key] = compiled
        return compiled

    async def resolve(self, apikey: str, device_id: str, *, protocol: str,
                      transport: str, resource: str | None = None) -> CompiledDevice:
        """The device a message comes from; autoprovisioned when its group allows it.

        apikey (+ resource) -> group -> tenant -> device: a key never reaches another tenant.
        """
        registry = self.devices.registry
        device = registry.device_for(apikey, device_id)
        if device is not None:
            return self._compile(device)
        group = registry.group_for(apikey, resource)
        if group is None:
            raise IotError("DEVICE_GROUP_NOT_FOUND",
                           f"Couldn't find device group for fields: apikey={apikey}", 404)
        tenant = group["service"]
        device = await registry.refresh_device(tenant, device_id)
        if device is not None and device.get("apikey") not in (apikey, "", None):
            raise IotError("DEVICE_NOT_FOUND", f"No device was found with id:{device_id} for "
                           f"apikey={apikey}", 404)
        if device is None:
            if group.get("autoprovision") is False:
                raise IotError("DEVICE_NOT_FOUND", f"No device was found with id:{device_id}", 404)
            lock = self._provisioning.setdefault((tenant, device_id), asyncio.Lock())
            async with lock:
                device = registry.devices.get((tenant, device_id))
                if device is None:
                    await add_devices(self.devices, tenant, group["subservice"], [{
                        "device_id": device_id, "apikey": apikey, "protocol": protocol,
                        "transport": transport}])
                    device = registry.devices[(tenant, device_id)]
            self._provisioning.pop((tenant, device_id), None)
        return self._compile(device)

    # -- measurements ----------------------------------------------------------------------------
    def fragments(self, device: CompiledDevice, groups: list[dict[str, Any]],
                  arrival: str) -> list[dict[str, Any]]:
        """The entity fragments (one per measure group) for a device's message."""
        out: list[dict[str, Any]] = []
        for measures in groups:
            try:
                attrs = to_attributes(device, measures, arrival)
            except TransformError as exc:
                raise IotError("WRONG_SYNTAX", f"device {device.device_id}: {exc}") from None
            reserved = RESERVED.intersection(attrs)
            if reserved:
                raise IotError("WRONG_SYNTAX", f"device {device.device_id}: a measure may not be "
                               f"named {', '.join(sorted(reserved))}")
            if attrs:
                fragment = {"id": device.entity_id, "type": device.entity_type, **attrs}
                if device.scope is not None:
                    fragment["scope"] = device.scope
                out.append(fragment)
        return out

    async def ingest(self, device: CompiledDevice, groups: list[dict[str, Any]]) -> int:
        """Store a device's measure groups; returns once every one is durable (or raises)."""
        if len(groups) > MAX_GROUPS:
            raise IotError("WRONG_SYNTAX", f"a message may carry at most {MAX_GROUPS} measure "
                           "groups", 413)
        arrival = utc_now()
        bodies = self.fragments(device, groups, arrival)
        if not bodies:
            return 0
        state = self.devices.state
        if state is not None:
            became_online, stamp_due = state.seen(device.tenant, device.device_id, time.time())
            if became_online:
                bodies[0][STATE] = ngsi_attribute("Text", "online")
            if stamp_due:     # at most once a minute: every stamp is a history row too
                bodies[-1][LAST_SEEN] = ngsi_attribute("DateTime", arrival)
        futures = [self.writer.submit(device.tenant, body) for body in bodies]
        self.received += len(bodies)
        try:
            if len(futures) == 1:      # the usual message: skip gather's task machinery
                await futures[0]
            else:
                await asyncio.gather(*futures)
        except BaseException:
            if state is not None:      # not written: let the next measurement try again
                state.unsettle(device.tenant, device.device_id)
            for future in futures:     # retrieve the others' outcomes too (no warnings)
                if future.done() and not future.cancelled():
                    future.exception()
            raise
        return len(bodies)

    def health(self) -> dict[str, Any]:
        """The agent's part of /health."""
        body: dict[str, Any] = {"devices": len(self.devices.registry.devices),
                                "received": self.received, "writer": self.writer.metrics()}
        body["mqtt"] = self.mqtt.health() if self.mqtt is not None else {
            "status": "off", "detail": "no MQTT broker URL set (CITYOS_IOT_MQTT_URL): HTTP only"}
        return body
