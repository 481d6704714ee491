"""IoT agent over MQTT through the real Mosquitto at 127.0.0.1:1883 (ED-DT-1, AS-CT-1).

Each test uses its own tenant, API key and MQTT client id, so sessions and data never mix.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import pytest

from cityos.app import create_app
from cityos.core.settings import Settings

MQTT = "mqtt://127.0.0.1:1883"


@pytest.fixture
def db_url(database_url: str, tmp_path: Path) -> str:
    """A database that outlives one app (a file for SQLite) so the app can be restarted."""
    return f"sqlite:///{tmp_path}/iot.db" if database_url == "sqlite://" else database_url


@asynccontextmanager
async def running(url: str, client_id: str, **extra: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A started CityOS with the MQTT consumer, and a client talking to it in-process."""
    settings = Settings.load(database_url=url, iot_mqtt_url=MQTT, iot_mqtt_client_id=client_id,
                             **extra)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        await asyncio.wait_for(app.state.iot.mqtt.connected.wait(), 10)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://cityos.test") as c:
            c.app = app  # type: ignore[attr-defined]
            yield c


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 15.0) -> None:
    """Wait until ``check`` holds (the agent works asynchronously from the publisher)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def _true(value: bool) -> bool:
    return value


def names() -> tuple[str, str, str]:
    token = uuid.uuid4().hex[:10]
    return f"t{token}", f"key{token}", f"cityos-test-{token}"


async def entity(c: httpx.AsyncClient, tenant: str, entity_id: str) -> dict[str, Any] | None:
    r = await c.get(f"/ngsi-ld/v1/entities/{entity_id}", headers={"NGSILD-Tenant": tenant})
    return r.json() if r.status_code == 200 else None


async def test_json_ultralight_and_single_attribute_topics(db_url: str) -> None:
    tenant, key, client_id = names()
    async with running(db_url, client_id) as c:
        r = await c.post("/iot/services", headers={"fiware-service": tenant}, json={"services": [
            {"apikey": key, "entity_type": "Sensor", "resource": "/iot/d",
             "attributes": [{"object_id": "t", "name": "temperature", "type": "Number"}]}]})
        assert r.status_code == 201
        async with aiomqtt.Client("127.0.0.1", 1883) as device:
            await device.publish(f"/json/{key}/s1/attrs", b'{"t": 20.5}', qos=1)
            await device.publish(f"/{key}/s2/attrs", b"t|7|s|ok", qos=1)
            await device.publish(f"/{key}/s3/attrs/t", b"3.25", qos=1)
            await device.publish(f"/{key}/s4/attrs", b"t|1|dangling", qos=1)   # bad: dropped

        async def arrived() -> bool:
            got = [await entity(c, tenant, f"urn:ngsi-ld:Sensor:s{n}") for n in (1, 2, 3)]
            return all(e and "temperature" in e for e in got)

        await until(arrived)
        values = [(await entity(c, tenant, f"urn:ngsi-ld:Sensor:s{n}"))["temperature"]["value"]
                  for n in (1, 2, 3)]  # type: ignore[index]
        assert values == [20.5, 7, 3.25]
        s2 = await entity(c, tenant, "urn:ngsi-ld:Sensor:s2")
        assert s2 is not None and s2["s"]["value"] == "ok"
        mqtt = c.app.state.iot.mqtt  # type: ignore[attr-defined]
        await until(lambda: _true(mqtt.rejected == 1))
        s4 = await entity(c, tenant, "urn:ngsi-ld:Sensor:s4")
        assert s4 is None or "temperature" not in s4       # nothing of the bad message stored


async def test_a_restart_during_a_burst_loses_nothing(db_url: str) -> None:
    tenant, key, client_id = names()
    devices, per_device = 20, 10
    sent: list[tuple[str, bytes]] = [
        (f"/json/{key}/d{d}/attrs",
         b'{"n": %d, "TimeInstant": "2026-11-26T00:%02d:00Z"}' % (i, i))
        for i in range(per_device) for d in range(devices)]
    half = len(sent) // 2
    async with running(db_url, client_id) as c:
        r = await c.post("/iot/services", headers={"fiware-service": tenant}, json={"services": [
            {"apikey": key, "entity_type": "Counter", "resource": "/iot/json"}]})
        assert r.status_code == 201
        async with aiomqtt.Client("127.0.0.1", 1883) as device:
            for topic, payload in sent[:half]:
                await device.publish(topic, payload, qos=1)
    # CityOS is down: the persistent session keeps what devices publish meanwhile
    async with aiomqtt.Client("127.0.0.1", 1883) as device:
        for topic, payload in sent[half:]:
            await device.publish(topic, payload, qos=1)
    async with running(db_url, client_id) as c:
        async def history_of(d: int) -> set[int]:
            r = await c.get(f"/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:Counter:d{d}",
                            params={"attrs": "n", "lastN": 100},
                            headers={"NGSILD-Tenant": tenant})
            if r.status_code != 200:
                return set()
            items = r.json().get("n", [])
            return {i["value"] for i in (items if isinstance(items, list) else [items])}

        async def complete() -> bool:
            for d in range(devices):
                if await history_of(d) != set(range(per_device)):
                    return False
            return True

        await until(complete, 30)
        lost = 0
        for d in range(devices):
            lost += per_device - len(await history_of(d))
        assert lost == 0


async def test_a_command_goes_out_over_mqtt_and_its_result_comes_back(db_url: str) -> None:
    tenant, key, client_id = names()
    async with running(db_url, client_id, iot_command_timeout=60.0) as c:
        r = await c.post("/iot/devices", headers={"fiware-service": tenant}, json={"devices": [
            {"device_id": "lamp1", "entity_type": "Streetlight", "apikey": key,
             "transport": "MQTT", "protocol": "PDI-IoTA-UltraLight",
             "commands": [{"name": "switch", "type": "command"}]}]})
        assert r.status_code == 201, r.text
        lamp = "urn:ngsi-ld:Streetlight:lamp1"
        async with aiomqtt.Client("127.0.0.1", 1883) as device:
            await device.subscribe(f"/{key}/lamp1/cmd", qos=1)
            r = await c.patch(f"/ngsi-ld/v1/entities/{lamp}/attrs/switch",
                              headers={"NGSILD-Tenant": tenant},
                              json={"type": "Property", "value": "on"})
            assert r.status_code == 204, r.text
            message = await asyncio.wait_for(anext(aiter(device.messages)), 10)
            assert message.payload == b"lamp1@switch|on"

            async def status(expected: str) -> Callable[[], Awaitable[bool]]:
                async def check() -> bool:
                    e = await entity(c, tenant, lamp)
                    return bool(e) and e["switch_status"]["value"] == expected  # type: ignore[index]
                return check

            await until(await status("DELIVERED"))
            await device.publish(f"/{key}/lamp1/cmdexe", b"lamp1@switch|switched on", qos=1)
            await until(await status("OK"))
            e = await entity(c, tenant, lamp)
            assert e is not None and e["switch_info"]["value"] == "switched on"
