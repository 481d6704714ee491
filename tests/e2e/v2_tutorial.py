"""FIWARE's "Getting Started" tutorial for Orion (NGSI v2), steps 1-9, as raw HTTP requests.

Source: https://github.com/FIWARE/tutorials.Getting-Started, branch ``NGSI-v2``, README section
"Creating your first Powered by FIWARE app".  Each step is the request its curl command sends
(``curl -G -d a -d b`` puts ``a&b`` verbatim in the query string; ``-d '...'`` sends the body
verbatim, leading newline included) and the response the tutorial documents.  Two notes:

* steps 2 and 3 document no response; Orion's API answers ``201`` with
  ``Location: /v2/entities/<id>?type=Store``, which is what we expect;
* step 5's documented body names Store 001 "Bose Brucke Einkauf" while step 2 created it as
  "Bösebrücke Einkauf" (and steps 4 and 8 show that): a typo in the tutorial, so we expect the
  value step 2 wrote.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Step:
    """One tutorial request and the response the tutorial documents."""

    name: str
    method: str
    target: str                        # path and raw query string, exactly as curl sends them
    status: int
    body: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    response: Any = None               # the documented JSON body (None: not compared)
    response_headers: dict[str, str] = field(default_factory=dict)
    check: Callable[[Any], None] | None = None


def _store(n: int, street: str, locality: str, postcode: str, lon: float, lat: float,
           name: str) -> tuple[str, dict[str, Any]]:
    """Store ``n``: the POST body of steps 2/3 and its keyValues form of steps 4-9."""
    body = (f'\n{{\n    "id": "urn:ngsi-ld:Store:00{n}",\n    "type": "Store",\n'
            f'    "address": {{\n        "type": "PostalAddress",\n        "value": {{\n'
            f'            "streetAddress": "{street}",\n            "addressRegion": "Berlin",\n'
            f'            "addressLocality": "{locality}",\n            "postalCode": "{postcode}"\n'
            f'        }},\n        "metadata": {{\n            "verified": {{\n'
            f'                "value": true,\n                "type": "Boolean"\n            }}\n'
            f'        }}\n    }},\n    "location": {{\n        "type": "geo:json",\n'
            f'        "value": {{\n             "type": "Point",\n'
            f'             "coordinates": [{lon}, {lat}]\n        }}\n    }},\n'
            f'    "name": {{\n        "type": "Text",\n        "value": "{name}"\n    }}\n}}')
    key_values = {
        "id": f"urn:ngsi-ld:Store:00{n}", "type": "Store",
        "address": {"streetAddress": street, "addressRegion": "Berlin",
                    "addressLocality": locality, "postalCode": postcode},
        "location": {"type": "Point", "coordinates": [lon, lat]},
        "name": name,
    }
    return body, key_values


STORE1_BODY, STORE1 = _store(1, "Bornholmer Straße 65", "Prenzlauer Berg", "10439",
                             13.3986, 52.5547, "Bösebrücke Einkauf")
STORE2_BODY, STORE2 = _store(2, "Friedrichstraße 44", "Kreuzberg", "10969",
                             13.3903, 52.5075, "Checkpoint Markt")
JSON = {"Content-Type": "application/json"}


def _is_orion_version(body: Any) -> None:
    """Step 1 "will look similar to": an ``orion`` object with a version and uptime."""
    assert set(body["orion"]) >= {"version", "uptime", "git_hash", "compile_time", "doc"}


GETTING_STARTED = [
    Step("1 version", "GET", "/version", 200, check=_is_orion_version),
    Step("2 create Store 001", "POST", "/v2/entities", 201, STORE1_BODY, JSON,
         response_headers={"Location": "/v2/entities/urn:ngsi-ld:Store:001?type=Store"}),
    Step("3 create Store 002", "POST", "/v2/entities", 201, STORE2_BODY, JSON,
         response_headers={"Location": "/v2/entities/urn:ngsi-ld:Store:002?type=Store"}),
    Step("4 by id", "GET", "/v2/entities/urn:ngsi-ld:Store:001?options=keyValues", 200,
         response=STORE1),
    Step("5 by type", "GET", "/v2/entities?type=Store&options=keyValues", 200,
         response=[STORE1, STORE2]),
    Step("6 q on a text value", "GET",
         "/v2/entities?type=Store&q=name==%27Checkpoint%20Markt%27&options=keyValues", 200,
         response=[STORE2]),
    Step("7 q on a sub-attribute", "GET",
         "/v2/entities?type=Store&q=address.addressLocality==Kreuzberg&options=keyValues", 200,
         response=[STORE2]),
    Step("8 mq on metadata", "GET",
         "/v2/entities?type=Store&mq=address.verified==true&options=keyValues", 200,
         response=[STORE1, STORE2]),
    Step("9 near the Brandenburg Gate", "GET",
         "/v2/entities?type=Store&georel=near;maxDistance:1500&geometry=point"
         "&coords=52.5162,13.3777&options=keyValues", 200, response=[STORE2]),
]
