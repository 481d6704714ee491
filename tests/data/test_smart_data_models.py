"""FIWARE Smart Data Models examples (../shared/data) round-trip: create -> retrieve -> equal.

The examples name their repository's @context by a github URL; the local copies are preloaded into
the resolver, exactly as an offline city would preload the contexts it uses.  Retrieval uses the
same context (hosted through /jsonldContexts), so every attribute must come back under the name
and with the value it was written with.  Two examples break the NGSI-LD rules on purpose-worthy
ways and must be refused with a precise 400 instead.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import SHARED

BASE = "/ngsi-ld/v1"
MODELS = SHARED / "data" / "smart-data-models"
EXAMPLES = sorted(MODELS.glob("*/*/examples/example-normalized.jsonld"))
# Known-invalid examples (see the data README's quirks) and why the broker refuses them.
REFUSED = {
    "WeatherForecast": "id is not a URI",
    "DeviceMeasurement": "location is a Property, not a GeoProperty",
}


def _preload_contexts(app: Any) -> None:
    resolver = app.state.broker.resolver
    for context_file in MODELS.glob("*/context.jsonld"):
        repo = context_file.parent.name
        document = json.loads(context_file.read_text(encoding="utf-8"))
        for url in (f"https://raw.githubusercontent.com/smart-data-models/{repo}/master/context.jsonld",
                    f"https://smart-data-models.github.io/{repo}/context.jsonld"):
            resolver.preload(url, document)


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _same(sent: Any, got: Any, path: str = "") -> None:
    """Equal, except that observedAt may be rewritten as the same instant in UTC."""
    if isinstance(sent, dict):
        assert isinstance(got, dict), path
        assert set(sent) == set(got), f"{path}: members {sorted(sent)} != {sorted(got)}"
        for key in sent:
            if key == "observedAt":
                assert _instant(sent[key]) == _instant(got[key]), f"{path}.observedAt"
            else:
                _same(sent[key], got[key], f"{path}.{key}")
    else:
        assert sent == got, f"{path}: {sent!r} != {got!r}"


def test_examples_are_present() -> None:
    assert len(EXAMPLES) >= 10, f"expected the Smart Data Models examples under {MODELS}"


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.parent.parent.name)
async def test_round_trip(app: Any, client: httpx.AsyncClient, example: Path) -> None:
    _preload_contexts(app)
    entity = json.loads(example.read_text(encoding="utf-8"))
    response = await client.post(f"{BASE}/entities", content=example.read_bytes(),
                                 headers={"content-type": "application/ld+json"})
    name = example.parent.parent.name
    if name in REFUSED:
        assert response.status_code == 400, (name, response.text)
        assert response.json()["type"].endswith("/BadRequestData")
        assert (await client.get(f"{BASE}/entities", params={"local": "true"})).json() == []
        return
    assert response.status_code == 201, response.text
    hosted = await client.post(f"{BASE}/jsonldContexts", json={"@context": entity["@context"]})
    assert hosted.status_code == 201, hosted.text
    link = f'<{hosted.headers["location"]}>; rel="http://www.w3.org/ns/json-ld#context"'
    got = await client.get(f"{BASE}/entities/{entity['id']}",
                           headers={"accept": "application/ld+json", "link": link})
    assert got.status_code == 200, got.text
    body = got.json()
    assert body.pop("@context") == hosted.headers["location"]
    sent = {k: v for k, v in entity.items() if k != "@context"}
    _same(sent, body)
