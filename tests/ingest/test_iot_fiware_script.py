"""A FIWARE tutorial-style provisioning session (curl commands as users paste them, aimed at an IoT
Agent's north port 4041) replayed unchanged against CityOS, then the devices' southbound traffic
(ED-IF-1: a city's existing FIWARE scripts keep working)."""

from __future__ import annotations

import json
import shlex
from typing import Any

import httpx

SCRIPT = r"""
curl -iX POST \
  'http://localhost:4041/iot/services' \
  -H 'Content-Type: application/json' \
  -H 'fiware-service: openiot' \
  -H 'fiware-servicepath: /' \
  -d '{
 "services": [
   {
     "apikey":      "4jggokgpepnvsb2uv4s40d59ov",
     "cbroker":     "http://orion:1026",
     "entity_type": "Thing",
     "resource":    "/iot/d"
   }
 ]
}'

curl -iX POST \
  'http://localhost:4041/iot/devices' \
  -H 'Content-Type: application/json' \
  -H 'fiware-service: openiot' \
  -H 'fiware-servicepath: /' \
  -d '{
 "devices": [
   {
     "device_id":   "motion001",
     "entity_name": "urn:ngsi-ld:Motion:001",
     "entity_type": "Motion",
     "timezone":    "Asia/Tokyo",
     "attributes": [
       { "object_id": "c", "name": "count", "type": "Integer" }
     ],
     "static_attributes": [
       { "name":"refStore", "type": "Relationship", "value": "urn:ngsi-ld:Store:001"}
     ]
   }
 ]
}'

curl -iX POST \
  'http://localhost:4041/iot/devices' \
  -H 'Content-Type: application/json' \
  -H 'fiware-service: openiot' \
  -H 'fiware-servicepath: /' \
  -d '{
  "devices": [
    {
      "device_id": "bell001",
      "entity_name": "urn:ngsi-ld:Bell:001",
      "entity_type": "Bell",
      "protocol": "PDI-IoTA-UltraLight",
      "transport": "HTTP",
      "endpoint": "http://iot-sensors:3001/iot/bell001",
      "commands": [
        { "name": "ring", "type": "command" }
       ],
       "static_attributes": [
         {"name":"refStore", "type": "Relationship","value": "urn:ngsi-ld:Store:001"}
      ]
    }
  ]
}'

curl -X GET \
  'http://localhost:4041/iot/devices' \
  -H 'fiware-service: openiot' \
  -H 'fiware-servicepath: /'
"""


def curl_requests(script: str) -> list[dict[str, Any]]:
    """Method, path, headers and body of each curl command of a shell script."""
    requests: list[dict[str, Any]] = []
    for command in script.replace("\\\n", " ").split("\n\n"):    # one command a paragraph
        words = shlex.split(command)
        if not words or words[0] != "curl":
            continue
        request: dict[str, Any] = {"method": "GET", "headers": {}, "body": None}
        i = 1
        while i < len(words):
            word = words[i]
            if word in ("-X", "-iX"):
                request["method"] = words[i + 1]
                i += 1
            elif word == "-H":
                name, _, value = words[i + 1].partition(":")
                request["headers"][name.strip()] = value.strip()
                i += 1
            elif word == "-d":
                request["body"] = words[i + 1].encode()
                i += 1
            elif word.startswith("http"):
                request["path"] = "/" + word.split("/", 3)[3]
            i += 1
        requests.append(request)
    return requests


async def test_the_tutorial_script_runs_unchanged(client: httpx.AsyncClient) -> None:
    answers = []
    for request in curl_requests(SCRIPT):
        r = await client.request(request["method"], request["path"], headers=request["headers"],
                                 content=request["body"])
        answers.append(r)
    assert [r.status_code for r in answers] == [201, 201, 201, 200]
    listing = answers[-1].json()
    assert listing["count"] == 2
    assert {d["device_id"] for d in listing["devices"]} == {"motion001", "bell001"}

    # the motion sensor reports over UltraLight, exactly as the tutorial's simulator does
    r = await client.post("/iot/d?k=4jggokgpepnvsb2uv4s40d59ov&i=motion001",
                          headers={"Content-Type": "text/plain"}, content=b"c|1")
    assert r.status_code == 200, r.text
    r = await client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Motion:001",
                         headers={"NGSILD-Tenant": "openiot"})
    motion = r.json()
    assert motion["count"]["value"] == 1
    assert motion["refStore"] == {"type": "Relationship", "object": "urn:ngsi-ld:Store:001"}
    r = await client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Bell:001",
                         headers={"NGSILD-Tenant": "openiot"})
    assert json.loads(r.content)["ring_status"]["value"] == "UNKNOWN"
