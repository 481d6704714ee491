"""Commands to actuators (AS-CT-1): an NGSI-LD update of a command attribute reaches the device.

:class:`CommandWatcher` wraps the store's change observer (ADR 0006).  Inside the write
transaction it spots a new value of a device's command attribute and adds an outbox row of kind
``iot-command``; after the commit it sends the command through the IoT agent's transport (MQTT
``/{apikey}/{device}/cmd`` or HTTP to the device ``endpoint``) and writes the progress back on the
entity: ``{cmd}_status`` = PENDING → DELIVERED → OK / ERROR (or EXPIRED when no result arrives
within ``timeout``), and the device's answer as ``{cmd}_info``.  No polling: the watcher hears of
the update from the write itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from cityos.assets.devices.actions import Devices
from cityos.assets.devices.entities import commands_of, info_attr, status_attr, write_entities
from cityos.assets.devices.model import entity_id_of
from cityos.core.ids import unique_id
from cityos.data.ngsild import Change, ChangeObserver, Effects, OutboxRow

log = logging.getLogger("cityos.devices")
COMMAND_KIND = "iot-command"
PENDING, DELIVERED, OK, ERROR, EXPIRED = "PENDING", "DELIVERED", "OK", "ERROR", "EXPIRED"
# (tenant, device, command, value) -> (status, info): DELIVERED, or OK/ERROR with the answer
Sender = Callable[[str, dict[str, Any], str, Any], Awaitable[tuple[str, Any]]]


class CommandWatcher:
    """A ChangeObserver that turns command attribute updates into commands sent to devices."""

    def __init__(self, devices: Devices, inner: ChangeObserver | None, *,
                 timeout: float = 30.0) -> None:
        self.devices = devices
        self.inner = inner
        self.timeout = timeout
        self.sender: Sender | None = None
        self.expand: Callable[[str], str] = lambda name: name
        # (tenant, entity id) -> (device, {expanded attribute IRI: command name})
        self._by_entity: dict[tuple[str, str], tuple[dict[str, Any], dict[str, str]]] = {}
        self._expiry: dict[tuple[str, str, str], asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.sent = 0
        self.unknown_results = 0      # cmdexe results naming a command the device does not have
        devices.registry.listeners.append(self.device_changed)

    def index_all(self) -> None:
        """Index every provisioned device's commands (at start-up)."""
        for tenant, device_id in list(self.devices.registry.devices):
            self.device_changed(tenant, device_id)

    def device_changed(self, tenant: str, device_id: str) -> None:
        """Re-index one device (registry listener)."""
        for key, (known, _cmds) in list(self._by_entity.items()):
            if key[0] == tenant and known["device_id"] == device_id:
                del self._by_entity[key]
        device = self.devices.registry.devices.get((tenant, device_id))
        if device is None:
            return
        names = commands_of(device, self._group(tenant, device))
        if names:
            self._by_entity[(tenant, entity_id_of(device))] = (
                device, {self.expand(n): n for n in names})

    def _group(self, tenant: str, device: dict[str, Any]) -> dict[str, Any] | None:
        group = self.devices.registry.group_for(device.get("apikey") or "")
        return group if group is not None and group["service"] == tenant else None

    # -- ChangeObserver --------------------------------------------------------------------------
    def effects(self, tenant: str, changes: list[Change]) -> Effects:
        """The inner observer's effects plus one outbox row per command issued (in the write)."""
        effects = self.inner.effects(tenant, changes) if self.inner is not None else Effects()
        for change in changes:
            entry = self._by_entity.get((tenant, change.entity_id))
            if entry is None or change.before is None or change.after is None:
                continue
            device, commands = entry
            for iri, name in commands.items():
                after = (change.after["attrs"].get(iri) or [None])[0]
                before = (change.before["attrs"].get(iri) or [None])[0]
                if after is None or after.get("value") in ("", None) or after == before:
                    continue
                effects.outbox.append(OutboxRow(
                    id=unique_id(), tenant=tenant, kind=COMMAND_KIND,
                    body={"device": device["device_id"], "command": name,
                          "value": after.get("value")}))
        return effects

    def committed(self, tenant: str, effects: Effects) -> None:
        """Pass the effects on, then start sending the commands they carry."""
        if self.inner is not None:
            self.inner.committed(tenant, effects)
        for row in effects.outbox:
            if row.kind == COMMAND_KIND:
                task = asyncio.get_running_loop().create_task(self._dispatch(row))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    # -- sending and results ---------------------------------------------------------------------
    async def _status(self, tenant: str, device: dict[str, Any], command: str, status: str,
                      info: Any = None) -> None:
        body: dict[str, Any] = {"id": entity_id_of(device), "type": device["entity_type"],
                                status_attr(command): {"type": "Property", "value": status}}
        if info is not None:
            body[info_attr(command)] = {"type": "Property", "value": info}
        await write_entities(self.devices.broker, tenant, [body])

    async def _dispatch(self, row: OutboxRow) -> None:
        tenant, body = row.tenant, row.body
        device = self.devices.registry.devices.get((tenant, body["device"]))
        try:
            if device is None:
                return
            command = body["command"]
            await self._status(tenant, device, command, PENDING)
            if self.sender is None:
                await self._status(tenant, device, command, ERROR, "no transport for commands")
                return
            try:
                status, info = await self.sender(tenant, device, command, body["value"])
            except Exception as exc:   # the device or broker did not take it
                status, info = ERROR, f"not delivered: {exc}"
            self.sent += 1
            await self._status(tenant, device, command, status, info)
            if status == DELIVERED:
                key = (tenant, device["device_id"], command)
                loop = asyncio.get_running_loop()
                self._expiry[key] = loop.call_later(self.timeout, self._expire, tenant, device,
                                                    command)
        except Exception:
            log.exception("command %s for %s failed", body.get("command"), body.get("device"))
        finally:
            with contextlib.suppress(Exception):
                await self.devices.broker.store.outbox_done([row.id])

    def _expire(self, tenant: str, device: dict[str, Any], command: str) -> None:
        self._expiry.pop((tenant, device["device_id"], command), None)
        task = asyncio.get_running_loop().create_task(
            self._status(tenant, device, command, EXPIRED, "no result from the device in time"))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def result(self, tenant: str, device_id: str, results: dict[str, Any]) -> None:
        """A device reported command results (``cmdexe``): status OK and the answer as info.

        Only the device's own commands are written: any other name is ignored and counted, so a
        device cannot create or overwrite arbitrary ``*_status`` / ``*_info`` attributes.
        """
        device = self.devices.registry.devices.get((tenant, device_id))
        if device is None:
            return
        known = set(commands_of(device, self._group(tenant, device)))
        for key, answer in results.items():
            command = key.split("@", 1)[1] if "@" in key else key
            if command not in known:
                self.unknown_results += 1
                log.warning("device %s reported a result for unknown command %r", device_id,
                            command[:80])
                continue
            timer = self._expiry.pop((tenant, device_id, command), None)
            if timer is not None:
                timer.cancel()
            await self._status(tenant, device, command, OK, answer)

    async def stop(self) -> None:
        """Cancel expiry timers and running sends."""
        for timer in self._expiry.values():
            timer.cancel()
        self._expiry.clear()
        for task in list(self._tasks):
            task.cancel()
