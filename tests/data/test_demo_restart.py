"""``cityos serve --demo`` started again on the same database: the demo city is not written
again, so its history does not grow by one copy per restart and a user's edits survive."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from cityos.app import create_app
from cityos.core.settings import Settings
from tests.conftest import _empty_postgres

STATION = "urn:ngsi-ld:WeatherObserved:kobe:sannomiya"
BASE = "/ngsi-ld/v1"
# the demo's hosted context: short names for every demo type and attribute
LINK = {"Link": '<http://cityos.test/ngsi-ld/v1/jsonldContexts/kobe-demo>; '
                'rel="http://www.w3.org/ns/json-ld#context"'}


@asynccontextmanager
async def demo_city(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://cityos.test") as c:
            yield c


async def instances(client: httpx.AsyncClient, attr: str) -> list[dict[str, Any]]:
    r = await client.get(f"{BASE}/temporal/entities/{STATION}", params={"attrs": attr},
                         headers=LINK)
    assert r.status_code == 200, r.text
    found = r.json()[attr]
    return found if isinstance(found, list) else [found]


async def count_stations(client: httpx.AsyncClient) -> int:
    r = await client.get(f"{BASE}/entities", headers=LINK,
                         params={"type": "WeatherObserved", "count": "true", "limit": 1})
    assert r.status_code == 200, r.text
    return int(r.headers["NGSILD-Results-Count"])


async def test_a_restart_keeps_the_demo_city_as_it_was(database_url: str, tmp_path: Path) -> None:
    if database_url == "sqlite://":
        database_url = f"sqlite:///{tmp_path / 'city.db'}"
    else:
        await _empty_postgres(database_url)
    settings = Settings.load(database_url=database_url, demo=True)
    temperature, name = "temperature", "name"

    async with demo_city(settings) as client:
        first = await instances(client, temperature)
        assert len(first) == 1
        stations = await count_stations(client)
        r = await client.patch(f"{BASE}/entities/{STATION}/attrs", headers=LINK,
                               json={name: {"type": "Property", "value": "三宮 (改名)"}})
        assert r.status_code == 204, r.text

    async with demo_city(settings) as client:
        assert await instances(client, temperature) == first
        r = await client.get(f"{BASE}/entities/{STATION}", headers=LINK)
        assert r.json()[name]["value"] == "三宮 (改名)"
        assert await count_stations(client) == stations > 0
