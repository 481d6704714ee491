"""PyPI's ngsildclient (Orange's NGSI-LD client) against a real ``cityos serve`` process.

A third-party client is the honest check that the API is what NGSI-LD clients expect: it creates,
reads, updates, queries, counts and deletes entities over real HTTP, on both storage engines.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from ngsildclient import Client, Entity

from tests.e2e.server import running_server


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'e2e.db'}" if database_url == "sqlite://" else database_url
    with running_server(url) as base:
        yield base


KIND = f"EvacuationShelter{uuid.uuid4().hex[:6]}"  # a fresh type: the database may be shared


def _shelter(n: int) -> Entity:
    shelter = Entity(KIND, f"kobe:shelter-{n}")
    shelter.prop("name", f"神戸市立避難所 {n}号")
    shelter.prop("capacity", 100 + n)
    shelter.prop("isOpen", n % 2 == 0)
    shelter.gprop("location", (34.69 + n / 1000, 135.19))
    shelter.rel("refWard", "urn:ngsi-ld:Ward:chuo")
    return shelter


def test_create_get_query_update_delete(server: str) -> None:
    port = int(server.rsplit(":", 1)[1])
    with Client(hostname="127.0.0.1", port=port) as client:
        first = _shelter(1)
        client.create(first)
        fetched = client.get(first.id)
        assert fetched["name"]["value"] == "神戸市立避難所 1号"
        assert fetched["capacity"]["value"] == 101
        assert fetched["location"]["value"]["coordinates"] == [135.19, 34.691]
        assert fetched["refWard"]["object"] == "urn:ngsi-ld:Ward:chuo"

        ok, _ = client.batch.create([_shelter(n) for n in range(2, 12)])
        assert ok
        assert client.count(type=KIND) == 11
        big = client.query_all(type=KIND, q="capacity>=108")
        assert sorted(e["capacity"]["value"] for e in big) == [108, 109, 110, 111]
        assert client.entities.count(type=KIND, q="isOpen==true") == 5

        changed = _shelter(1)
        changed.prop("capacity", 999)
        client.update(changed)
        assert client.get(first.id)["capacity"]["value"] == 999

        ok, _ = client.batch.upsert([_shelter(2), _shelter(40)])
        assert ok
        assert client.count(type=KIND) == 12
        assert KIND in client.list_types()

        assert client.delete(first.id)
        assert not client.exists(first.id)
        client.drop(KIND)
        assert client.count(type=KIND) == 0
