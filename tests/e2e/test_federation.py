"""City to city (SI-IC-2): two real ``cityos serve`` processes federated through registrations.

City A (Kobe) and city B (Osaka) run on one machine, each with its own port and SQLite database,
exactly as docs/federation.md sets them up.  B registers A as a context source; a client of B
then sees A's entities together with B's own.  Also: A and B registering each other (a loop)
must not hang, and a dead source must not fail the query.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import free_port, running_server

API = "/ngsi-ld/v1"
ENV = {"CITYOS_NOTIFICATION_ALLOW": "127.0.0.1", "CITYOS_FEDERATION_TIMEOUT": "2"}


def _spot(city: str, n: int, free: int) -> dict[str, object]:
    return {"id": f"urn:ngsi-ld:ParkingSpot:{city}-{n}", "type": "ParkingSpot",
            "name": {"type": "Property", "value": f"{city} 駐車場 {n}"},
            "availableSpotNumber": {"type": "Property", "value": free,
                                    "observedAt": "2026-11-26T09:00:00+09:00"}}


def _register(client: httpx.Client, endpoint: str, name: str) -> None:
    body = {"id": f"urn:ngsi-ld:ContextSourceRegistration:{name}",
            "type": "ContextSourceRegistration", "registrationName": name,
            "information": [{"entities": [{"type": "ParkingSpot"}]}], "endpoint": endpoint}
    response = client.post(f"{API}/csourceRegistrations", json=body)
    assert response.status_code == 201, response.text


@pytest.fixture
def cities(tmp_path: Path) -> Iterator[tuple[httpx.Client, httpx.Client, str, str]]:
    """City A and city B, started; a client to each and their base URLs."""
    with running_server(f"sqlite:///{tmp_path / 'kobe.db'}",
                        env={**ENV, "CITYOS_FEDERATION_ID": "kobe"}) as a_url, \
            running_server(f"sqlite:///{tmp_path / 'osaka.db'}",
                           env={**ENV, "CITYOS_FEDERATION_ID": "osaka"}) as b_url, \
            httpx.Client(base_url=a_url, timeout=15) as a, \
            httpx.Client(base_url=b_url, timeout=15) as b:
        for n in (1, 2):
            assert a.post(f"{API}/entities", json=_spot("kobe", n, 10 * n)).status_code == 201
        assert b.post(f"{API}/entities", json=_spot("osaka", 1, 5)).status_code == 201
        yield a, b, a_url, b_url


def _ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return sorted(e["id"].rsplit(":", 1)[1] for e in response.json())


def test_city_b_serves_city_a_data_and_a_loop_does_not_hang(
        cities: tuple[httpx.Client, httpx.Client, str, str]) -> None:
    a, b, a_url, b_url = cities
    assert _ids(b.get(f"{API}/entities?type=ParkingSpot")) == ["osaka-1"]
    _register(b, a_url, "kobe")
    both = b.get(f"{API}/entities?type=ParkingSpot&count=true&options=keyValues")
    assert _ids(both) == ["kobe-1", "kobe-2", "osaka-1"]
    assert both.headers["ngsild-results-count"] == "3"
    assert "ngsild-warning" not in both.headers
    one = b.get(f"{API}/entities/urn:ngsi-ld:ParkingSpot:kobe-2?options=keyValues")
    assert one.json()["availableSpotNumber"] == 20
    assert _ids(b.get(f"{API}/entities?type=ParkingSpot&local=true")) == ["osaka-1"]

    _register(a, b_url, "osaka")          # now A and B register each other: a loop
    assert _ids(b.get(f"{API}/entities?type=ParkingSpot")) == ["kobe-1", "kobe-2", "osaka-1"]
    assert _ids(a.get(f"{API}/entities?type=ParkingSpot")) == ["kobe-1", "kobe-2", "osaka-1"]


def test_a_dead_source_does_not_fail_the_query(
        cities: tuple[httpx.Client, httpx.Client, str, str]) -> None:
    _, b, a_url, _ = cities
    _register(b, a_url, "kobe")
    _register(b, f"http://127.0.0.1:{free_port()}", "nobody-listens")
    response = b.get(f"{API}/entities?type=ParkingSpot")
    assert _ids(response) == ["kobe-1", "kobe-2", "osaka-1"]
    warning = response.headers["ngsild-warning"]
    assert warning.startswith("199 osaka ") and "nobody-listens" in warning
