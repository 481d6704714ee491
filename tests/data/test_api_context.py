"""Contract tests: @context handling (CIM 009 5.5.7, 6.3.5, 5.13 /jsonldContexts).

A user context is served by a real HTTP server started here on 127.0.0.1 (the Smart Data Models
Weather context from ../shared); names expand to its IRIs and compact back.  An unreachable context
is 503 LdContextNotAvailable; every published core-context URL works without a network.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

BASE = "/ngsi-ld/v1"
ERR = "https://uri.etsi.org/ngsi-ld/errors/"
SDM = "https://smartdatamodels.org/"
WEATHER_CONTEXT = (Path(__file__).resolve().parents[2].parent / "shared" / "data"
                   / "smart-data-models" / "dataModel.Weather" / "context.jsonld")
CORE_URLS = [
    "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld",
    *(f"https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.{n}.jsonld" for n in range(3, 9)),
]
EID = "urn:ngsi-ld:WeatherObserved:kobe-port"


class ContextServer:
    """A tiny HTTP server on 127.0.0.1 serving JSON documents by path, counting requests."""

    def __init__(self, documents: dict[str, Any]) -> None:
        self.documents = documents
        self.hits: dict[str, int] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits[self.path] = server.hits.get(self.path, 0) + 1
                document = server.documents.get(self.path)
                if document is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                data = json.dumps(document).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/ld+json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def context_server() -> Iterator[ContextServer]:
    weather = json.loads(WEATHER_CONTEXT.read_text(encoding="utf-8"))
    server = ContextServer({"/weather.jsonld": weather,
                            "/kobe.jsonld": {"@context": {"@vocab": "https://example.org/kobe#"}}})
    yield server
    server.stop()


def link(url: str) -> dict[str, str]:
    return {"Link": f'<{url}>; rel="http://www.w3.org/ns/json-ld#context"; '
                    'type="application/ld+json"'}


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/missing-context.jsonld"


OBSERVATION: dict[str, Any] = {
    "id": EID, "type": "WeatherObserved",
    "temperature": {"type": "Property", "value": 14.2, "observedAt": "2026-11-25T15:00:00+09:00"},
    "relativeHumidity": {"type": "Property", "value": 0.61},
    "dateObserved": {"type": "Property", "value": "2026-11-25T15:00:00+09:00"},
    "address": {"type": "Property", "value": {"addressLocality": "神戸市中央区"}},
}


async def test_user_context_expands_and_compacts(client: httpx.AsyncClient,
                                                 context_server: ContextServer) -> None:
    url = context_server.base + "/weather.jsonld"
    hits_before = context_server.hits.get("/weather.jsonld", 0)
    response = await client.post(f"{BASE}/entities", json=OBSERVATION, headers=link(url))
    assert response.status_code == 201, response.text
    # with the same context the short names come back
    same = (await client.get(f"{BASE}/entities/{EID}", headers=link(url))).json()
    assert same["type"] == "WeatherObserved" and same["temperature"]["value"] == 14.2
    assert "relativeHumidity" in same and "dateObserved" in same
    # without it, the IRIs of the Smart Data Models context show
    plain = (await client.get(f"{BASE}/entities/{EID}")).json()
    assert plain["type"] == SDM + "dataModel.Weather/WeatherObserved"
    assert SDM + "dataModel.Weather/temperature" in plain
    assert SDM + "dataModel.Weather/relativeHumidity" in plain
    # queries use the caller's context too
    listing = await client.get(f"{BASE}/entities",
                               params={"type": "WeatherObserved", "q": "temperature>14"},
                               headers=link(url))
    assert [e["id"] for e in listing.json()] == [EID]
    by_iri = await client.get(f"{BASE}/entities",
                              params={"type": SDM + "dataModel.Weather/WeatherObserved"})
    assert [e["id"] for e in by_iri.json()] == [EID]
    # fetched once by this app, then cached
    assert context_server.hits["/weather.jsonld"] == hits_before + 1


async def test_json_ld_body_context(client: httpx.AsyncClient,
                                    context_server: ContextServer) -> None:
    url = context_server.base + "/weather.jsonld"
    body = {**OBSERVATION, "@context": [url, CORE_URLS[-1]]}
    response = await client.post(f"{BASE}/entities", json=body,
                                 headers={"Content-Type": "application/ld+json"})
    assert response.status_code == 201, response.text
    got = await client.get(f"{BASE}/entities/{EID}",
                           headers={**link(url), "Accept": "application/ld+json"})
    assert got.json()["@context"] == url
    assert "temperature" in got.json()


async def test_inline_context_object(client: httpx.AsyncClient) -> None:
    body = {"id": "urn:ngsi-ld:Shelter:1", "type": "Shelter",
            "capacity": {"type": "Property", "value": 300},
            "@context": {"Shelter": "https://example.org/kobe#Shelter",
                         "capacity": "https://example.org/kobe#capacity"}}
    response = await client.post(f"{BASE}/entities", json=body,
                                 headers={"Content-Type": "application/ld+json"})
    assert response.status_code == 201, response.text
    plain = (await client.get(f"{BASE}/entities/urn:ngsi-ld:Shelter:1")).json()
    assert plain["type"] == "https://example.org/kobe#Shelter"
    assert plain["https://example.org/kobe#capacity"]["value"] == 300


async def test_unreachable_context_is_503(client: httpx.AsyncClient) -> None:
    missing = closed_port_url()
    response = await client.post(f"{BASE}/entities", json=OBSERVATION, headers=link(missing))
    assert response.status_code == 503
    assert response.json()["type"] == ERR + "LdContextNotAvailable"
    response = await client.get(f"{BASE}/entities/{EID}", headers=link(missing))
    assert response.status_code == 503
    assert (await client.get(f"{BASE}/entities/{EID}")).status_code == 404  # nothing written


async def test_context_answering_404_is_503(client: httpx.AsyncClient,
                                            context_server: ContextServer) -> None:
    response = await client.get(f"{BASE}/entities", params={"type": "X"},
                                headers=link(context_server.base + "/nope.jsonld"))
    assert response.status_code == 503
    assert response.json()["type"] == ERR + "LdContextNotAvailable"


@pytest.mark.parametrize("core", CORE_URLS)
async def test_every_core_context_url_works_offline(client: httpx.AsyncClient, core: str) -> None:
    body = {"id": "urn:ngsi-ld:Thing:1", "type": "Thing",
            "p": {"type": "Property", "value": 1}, "@context": core}
    response = await client.post(f"{BASE}/entities", json=body,
                                 headers={"Content-Type": "application/ld+json"})
    assert response.status_code == 201, response.text
    got = await client.get(f"{BASE}/entities/urn:ngsi-ld:Thing:1", headers=link(core))
    assert got.json()["p"]["value"] == 1 and got.json()["type"] == "Thing"


async def test_link_header_must_be_well_formed(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{BASE}/entities", params={"type": "X"},
                                headers={"Link": "no angle brackets"})
    assert response.status_code == 400
    assert response.json()["type"] == ERR + "BadRequestData"


# ------------------------------------------------------------------------- /jsonldContexts

async def test_jsonld_contexts_api_round_trip(client: httpx.AsyncClient) -> None:
    document = {"@context": {"Shelter": "https://example.org/kobe#Shelter",
                             "capacity": "https://example.org/kobe#capacity"}}
    response = await client.post(f"{BASE}/jsonldContexts", json=document)
    assert response.status_code == 201, response.text
    assert response.content == b""
    location = response.headers["location"]
    assert location.startswith(f"{BASE}/jsonldContexts/")
    local_id = location.rsplit("/", 1)[1]
    url = "http://cityos.test" + location
    # listed (by URL, and with details)
    assert url in (await client.get(f"{BASE}/jsonldContexts")).json()
    details = (await client.get(f"{BASE}/jsonldContexts", params={"details": "true"})).json()
    mine = next(d for d in details if d["localId"] == local_id)
    assert mine["kind"] == "Hosted" and mine["URL"] == url and mine["createdAt"]
    assert all(d["createdAt"] for d in details)
    hosted = (await client.get(f"{BASE}/jsonldContexts", params={"kind": "Hosted"})).json()
    assert hosted == [url]
    # served as it was given, as application/json
    served = await client.get(location)
    assert served.status_code == 200
    assert served.headers["content-type"].startswith("application/json")
    assert served.json() == document
    meta = (await client.get(location, params={"details": "true"})).json()
    assert meta == {"URL": url, "localId": local_id, "kind": "Hosted",
                    "createdAt": mine["createdAt"]}
    # usable through a Link header without any network
    body = {"id": "urn:ngsi-ld:Shelter:chuo", "type": "Shelter",
            "capacity": {"type": "Property", "value": 120}}
    assert (await client.post(f"{BASE}/entities", json=body,
                              headers=link(url))).status_code == 201
    plain = (await client.get(f"{BASE}/entities/urn:ngsi-ld:Shelter:chuo")).json()
    assert plain["type"] == "https://example.org/kobe#Shelter"
    # whatever host the caller reaches the broker by
    other_host = "http://broker.example:8080" + location
    got = await client.get(f"{BASE}/entities/urn:ngsi-ld:Shelter:chuo", headers=link(other_host))
    assert got.json()["type"] == "Shelter"
    # deleted
    assert (await client.delete(location)).status_code == 204
    assert (await client.get(location)).status_code == 404
    assert (await client.delete(location)).status_code == 404


async def test_jsonld_contexts_errors(client: httpx.AsyncClient) -> None:
    for body in ({"name": "no context"}, {"@context": 3}, ["@context"]):
        response = await client.post(f"{BASE}/jsonldContexts", json=body)
        assert response.status_code == 400, body
        assert response.json()["type"] == ERR + "BadRequestData"
    missing = await client.get(f"{BASE}/jsonldContexts/0123456789abcdef")
    assert missing.status_code == 404
    assert missing.json()["type"] == ERR + "ResourceNotFound"
    bad = await client.get(f"{BASE}/jsonldContexts/core", params={"details": "other"})
    assert bad.status_code == 400
    assert (await client.delete(f"{BASE}/jsonldContexts/core")).status_code == 400
    assert (await client.get(f"{BASE}/jsonldContexts", params={"kind": "Other"})).status_code == 400


async def test_cached_contexts_are_listed_served_and_reloaded(
        client: httpx.AsyncClient) -> None:
    server = ContextServer({"/kobe.jsonld": {"@context": {"@vocab": "https://example.org/kobe#"}}})
    try:
        url = server.base + "/kobe.jsonld"
        body = {"id": "urn:ngsi-ld:Shelter:1", "type": "Shelter"}
        assert (await client.post(f"{BASE}/entities", json=body,
                                  headers=link(url))).status_code == 201
        cached = (await client.get(f"{BASE}/jsonldContexts", params={"kind": "Cached"})).json()
        assert url in cached
        meta = (await client.get(f"{BASE}/jsonldContexts/{url}",
                                 params={"details": "true"})).json()
        assert meta["kind"] == "Cached" and meta["URL"] == url and meta["createdAt"]
        served = await client.get(f"{BASE}/jsonldContexts/{url}")
        assert served.json() == {"@context": {"@vocab": "https://example.org/kobe#"}}
        response = await client.delete(f"{BASE}/jsonldContexts/{url}", params={"reload": "true"})
        assert response.status_code == 204
        assert server.hits["/kobe.jsonld"] == 2
    finally:
        server.stop()
    # the server is gone: reloading fails with 503, a plain delete drops it
    response = await client.delete(f"{BASE}/jsonldContexts/{url}", params={"reload": "true"})
    assert response.status_code == 503
    assert response.json()["type"] == ERR + "LdContextNotAvailable"
    assert (await client.delete(f"{BASE}/jsonldContexts/{url}")).status_code == 204
    assert url not in (await client.get(f"{BASE}/jsonldContexts")).json()


async def test_core_context_is_listed_and_served(client: httpx.AsyncClient) -> None:
    listing = (await client.get(f"{BASE}/jsonldContexts")).json()
    assert CORE_URLS[-1] in listing
    served = (await client.get(f"{BASE}/jsonldContexts/core")).json()
    assert served["@context"]["ngsi-ld"] == "https://uri.etsi.org/ngsi-ld/"
