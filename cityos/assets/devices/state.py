"""Device state: last seen, online / offline (AS-DV-1).

The IoT agent calls :meth:`DeviceState.seen` for every measurement; a device that was not online
becomes ``online`` in the same write as its measurement, and ``dateLastValueReported`` is written
with it at most once a minute (each write of it is a history row; the exact time is in memory and
in every measure's ``observedAt``).  :meth:`DeviceState.run` checks once per
``check_every`` seconds which devices with an ``expected_interval`` sent nothing for
``factor`` × that interval and writes ``deviceState: offline`` on their entities, so an NGSI-LD
subscription on ``deviceState`` hears about it.  The clock starts at start-up for devices not yet
heard from, so a restart does not mark every device offline at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from cityos.assets.devices.entities import OFFLINE, ONLINE, STATE, UNKNOWN, write_entities
from cityos.assets.devices.model import entity_id_of

log = logging.getLogger("cityos.devices")
Key = tuple[str, str]


class DeviceState:
    """Live state of every device, in memory; transitions are written to the entities."""

    def __init__(self, devices: Any, *, factor: float = 3.0, check_every: float = 5.0) -> None:
        self.devices = devices
        self.factor = factor
        self.check_every = check_every
        self.started = time.time()
        self.last_seen: dict[Key, float] = {}
        self.state: dict[Key, str] = {}
        self.stamp_every = 60.0
        self._stamped: dict[Key, float] = {}

    def seen(self, tenant: str, device_id: str, at: float | None = None) -> tuple[bool, bool]:
        """Record data from a device: (it just became online — write ``deviceState``, its
        ``dateLastValueReported`` is due — at most every ``stamp_every`` seconds)."""
        key = (tenant, device_id)
        now = at if at is not None else time.time()
        self.last_seen[key] = now
        stamp_due = now - self._stamped.get(key, 0.0) >= self.stamp_every
        if stamp_due:
            self._stamped[key] = now
        if self.state.get(key) == ONLINE:
            return False, stamp_due
        self.state[key] = ONLINE
        return True, stamp_due

    def unsettle(self, tenant: str, device_id: str) -> None:
        """A measurement was not stored: write state and stamp again with the next one."""
        self.state.pop((tenant, device_id), None)
        self._stamped.pop((tenant, device_id), None)

    def snapshot(self, tenant: str, device_id: str) -> dict[str, Any]:
        """``{"state": ..., "lastSeen": epoch seconds or None}`` of one device."""
        key = (tenant, device_id)
        return {"state": self.state.get(key, UNKNOWN), "lastSeen": self.last_seen.get(key)}

    def overdue(self, now: float) -> list[tuple[str, dict[str, Any]]]:
        """(tenant, device) of every online or unknown device silent for too long."""
        late: list[tuple[str, dict[str, Any]]] = []
        for (tenant, device_id), device in list(self.devices.registry.devices.items()):
            interval = device.get("expected_interval")
            key = (tenant, device_id)
            if not interval or self.state.get(key) == OFFLINE:
                continue
            last = self.last_seen.get(key, self.started)
            if now - last > self.factor * float(interval):
                late.append((tenant, device))
        return late

    async def check(self, now: float | None = None) -> int:
        """Mark overdue devices offline (one write per tenant); returns how many."""
        late = self.overdue(time.time() if now is None else now)
        by_tenant: dict[str, list[dict[str, Any]]] = {}
        for tenant, device in late:
            by_tenant.setdefault(tenant, []).append(device)
        for tenant, group in by_tenant.items():
            bodies = [{"id": entity_id_of(d), "type": d["entity_type"],
                       STATE: {"type": "Property", "value": OFFLINE}} for d in group]
            await write_entities(self.devices.broker, tenant, bodies)
            for device in group:
                self.state[(tenant, device["device_id"])] = OFFLINE
        return len(late)

    async def run(self) -> None:
        """Check forever (a lifespan task)."""
        while True:
            await asyncio.sleep(self.check_every)
            try:
                marked = await self.check()
                if marked:
                    log.info("%d device(s) went offline", marked)
            except Exception:   # a failed check is retried on the next tick
                log.exception("device state check failed")

    def forget(self, tenant: str, device_id: str) -> None:
        """Drop a deprovisioned device's state."""
        self.last_seen.pop((tenant, device_id), None)
        self.state.pop((tenant, device_id), None)
        self._stamped.pop((tenant, device_id), None)

