"""Everything the IoT agent runs, built and started in one place for the composition root.

``IotRuntime`` owns the device registry, the live state monitor, the agent with its batching
writer, the MQTT consumer (only when ``CITYOS_IOT_MQTT_URL`` is set) and the command watcher that
wraps the store's change observer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from cityos.assets.devices import CommandWatcher, DeviceRegistry, Devices, DeviceState
from cityos.core.settings import Settings
from cityos.data.ngsild import Broker
from cityos.data.ngsild.notify import EndpointPolicy
from cityos.ingest.iot.agent import IotAgent
from cityos.ingest.iot.commands import CommandSender
from cityos.ingest.iot.mqtt import MqttSouthbound

log = logging.getLogger("cityos.iot")
# seconds between re-reads of the device registry, so groups and devices provisioned through
# another node reach this node's southbound and command watcher (as csource/index.py does)
RELOAD_INTERVAL = 5.0


class IotRuntime:
    """The IoT agent's parts, wired together; :meth:`start` / :meth:`stop` from the lifespan."""

    def __init__(self, broker: Broker, settings: Settings) -> None:
        self.devices = Devices(broker=broker, registry=DeviceRegistry(broker.store))
        self.devices.state = DeviceState(self.devices, factor=settings.iot_offline_factor)
        # group commit: one write in flight for SQLite (its store has one writer thread, so more
        # would only make smaller groups); two for PostgreSQL, whose connections work in parallel
        writers = 1 if broker.store.engine == "sqlite" else 2
        self.agent = IotAgent(self.devices, batch_size=settings.iot_batch_size, writers=writers)
        self.mqtt: MqttSouthbound | None = None
        if settings.iot_mqtt_url:
            self.mqtt = MqttSouthbound(self.agent, settings.iot_mqtt_url,
                                       client_id=settings.iot_mqtt_client_id)
            self.agent.mqtt = self.mqtt
        self.commands = CommandWatcher(self.devices, broker.store.observer,
                                       timeout=settings.iot_command_timeout)
        self.commands.sender = CommandSender(self.mqtt, EndpointPolicy.from_settings(settings))
        if self.mqtt is not None:
            self.mqtt.on_command_result = self.commands.result
        broker.store.observer = self.commands
        self._monitor: asyncio.Task[None] | None = None
        self._reloader: asyncio.Task[None] | None = None
        self.reload_interval = RELOAD_INTERVAL

    async def start(self) -> None:
        """Load the registry, start the writer, the state monitor and the MQTT consumer."""
        await self.devices.registry.load()
        term_map = await self.devices.broker.resolver.term_map(None)
        self.commands.expand = term_map.expand
        self.commands.index_all()
        await self.agent.start()
        self._monitor = asyncio.create_task(self.devices.state.run(), name="iot-device-state")
        self._reloader = asyncio.create_task(self._reload_forever(), name="iot-registry-reload")
        if self.mqtt is not None:
            await self.mqtt.start()
        else:
            log.info("IoT agent: HTTP only (/iot/json, /iot/d); set CITYOS_IOT_MQTT_URL for MQTT")

    async def stop(self) -> None:
        """Stop taking messages, finish the queued writes, stop the monitor."""
        if self.mqtt is not None:
            await self.mqtt.stop()
        await self.agent.stop()
        await self.commands.stop()
        for task in (self._monitor, self._reloader):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def reload(self) -> None:
        """Re-read the registry; changed devices re-index themselves (listeners)."""
        await self.devices.registry.load()

    async def _reload_forever(self) -> None:
        while True:
            await asyncio.sleep(self.reload_interval)
            try:
                await self.reload()
            except Exception:      # the store is down: keep what is known, try again later
                log.warning("IoT agent: reloading the device registry failed", exc_info=True)

    def health(self) -> dict[str, Any]:
        """The IoT agent's part of /health."""
        return self.agent.health()
