"""Sending commands to devices over their transport (AS-CT-1, ED-DT-1).

MQTT devices get ``device@cmd|value`` (UltraLight) on ``/{apikey}/{device}/cmd`` or
``{"cmd": value}`` (JSON) on ``/json/{apikey}/{device}/cmd``; once the broker accepted it (PUBACK)
the status is DELIVERED and the result comes back on ``cmdexe``.  HTTP devices with an
``endpoint`` get the same payload in a POST and answer with the result in the response body.
"""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from cityos.assets.devices import JSON
from cityos.ingest.iot.ultralight import UltraLightError, format_command, parse_command_result

HTTP_TIMEOUT = 10.0


def command_payload(device: dict[str, Any], command: str, value: Any) -> bytes:
    """The bytes a device receives for ``command``."""
    if device.get("protocol") == JSON:
        return orjson.dumps({command: value})
    return format_command(device["device_id"], command, value).encode()


def command_topic(device: dict[str, Any]) -> str:
    """The MQTT topic a device listens on for commands."""
    prefix = "/json" if device.get("protocol") == JSON else ""
    return f"{prefix}/{device.get('apikey', '')}/{device['device_id']}/cmd"


def http_result(device: dict[str, Any], command: str, body: bytes) -> Any:
    """The result a device put in its HTTP answer (None when it sent none)."""
    if not body.strip():
        return None
    if device.get("protocol") == JSON:
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            return body.decode("utf-8", "replace")
        return data.get(command, data) if isinstance(data, dict) else data
    try:
        return parse_command_result(body.decode("utf-8", "replace"))[2]
    except UltraLightError:
        return body.decode("utf-8", "replace")


class CommandSender:
    """Delivers commands over MQTT (through the agent's consumer connection) or HTTP."""

    def __init__(self, mqtt: Any) -> None:
        self.mqtt = mqtt

    async def __call__(self, tenant: str, device: dict[str, Any], command: str,
                       value: Any) -> tuple[str, Any]:
        """Send one command; (DELIVERED, None), (OK, result) or (ERROR, reason)."""
        payload = command_payload(device, command, value)
        if device.get("endpoint"):
            headers = {"content-type": "application/json" if device.get("protocol") == JSON
                       else "text/plain", "fiware-service": tenant}
            async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as client:
                response = await client.post(device["endpoint"], content=payload, headers=headers)
            if response.status_code >= 300:
                return "ERROR", f"the device answered HTTP {response.status_code}"
            result = http_result(device, command, response.content)
            return ("OK", result) if result is not None else ("DELIVERED", None)
        if device.get("transport") == "MQTT":
            if self.mqtt is None:
                return "ERROR", "no MQTT broker is configured (CITYOS_IOT_MQTT_URL)"
            await self.mqtt.publish(command_topic(device), payload)
            return "DELIVERED", None
        return "ERROR", "the device has no endpoint and does not use MQTT"
