"""Sending commands to devices over their transport (AS-CT-1, ED-DT-1).

MQTT devices get ``device@cmd|value`` (UltraLight) on ``/{apikey}/{device}/cmd`` or
``{"cmd": value}`` (JSON) on ``/json/{apikey}/{device}/cmd``; once the broker accepted it (PUBACK)
the status is DELIVERED and the result comes back on ``cmdexe``.  HTTP devices with an
``endpoint`` get the same payload in a POST and answer with the result in the response body.

The endpoint is a URL a provisioning client chose, so it is guarded like a notification endpoint
(SSRF, ADR 0010): checked by the notification :class:`EndpointPolicy` when the device is
provisioned, and resolved and checked again before every command, the connection then going to
the checked address (no second lookup a rebinding DNS server could answer differently).  No
proxies from the environment, no redirects, and at most :data:`MAX_ANSWER` bytes of the answer
are read (it is stored in ``{cmd}_info``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import orjson

from cityos.assets.devices import JSON
from cityos.core.problems import Problem
from cityos.data.ngsild.notify import EndpointPolicy
from cityos.ingest.iot.ultralight import UltraLightError, format_command, parse_command_result

HTTP_TIMEOUT = 10.0
MAX_ANSWER = 64 * 1024


class AnswerTooLarge(Exception):
    """The device answered more than :data:`MAX_ANSWER` bytes."""


def pinned_url(url: str, address: str) -> tuple[str, str, str]:
    """(``url`` with its host replaced by the checked ``address``, Host header, TLS name)."""
    parts = urlsplit(url)
    host = f"[{address}]" if ":" in address else address
    netloc = f"{host}:{parts.port}" if parts.port else host
    authority = parts.netloc.rpartition("@")[2]     # never send credentials as the Host
    return (urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, "")), authority,
            parts.hostname or "")


async def post_checked(policy: EndpointPolicy, url: str, payload: bytes,
                       headers: dict[str, str]) -> tuple[int, bytes]:
    """POST to ``url`` after the SSRF check, to the checked address; (status, capped body)."""
    addresses = await policy.resolve(url)       # BadRequestData when refused, OSError when unknown
    target, authority, name = pinned_url(url, addresses[0])
    extensions = {"sni_hostname": name} if url.lower().startswith("https:") else {}
    async with httpx.AsyncClient(timeout=HTTP_TIMEOUT, trust_env=False,
                                 follow_redirects=False) as client:
        request = client.build_request("POST", target, content=payload,
                                       headers={**headers, "host": authority},
                                       extensions=extensions)
        response = await client.send(request, stream=True)
        try:
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_ANSWER:
                    raise AnswerTooLarge(f"the device answered more than {MAX_ANSWER} bytes")
        finally:
            await response.aclose()
    return response.status_code, bytes(body)


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

    def __init__(self, mqtt: Any, policy: EndpointPolicy | None = None) -> None:
        self.mqtt = mqtt
        self.policy = policy or EndpointPolicy()

    async def __call__(self, tenant: str, device: dict[str, Any], command: str,
                       value: Any) -> tuple[str, Any]:
        """Send one command; (DELIVERED, None), (OK, result) or (ERROR, reason)."""
        payload = command_payload(device, command, value)
        if device.get("endpoint"):
            headers = {"content-type": "application/json" if device.get("protocol") == JSON
                       else "text/plain", "fiware-service": tenant}
            try:
                status, body = await post_checked(self.policy, device["endpoint"], payload,
                                                  headers)
            except Problem as refused:
                return "ERROR", f"endpoint refused: {refused.detail}"[:300]
            except AnswerTooLarge as exc:
                return "ERROR", str(exc)
            if status >= 300:
                return "ERROR", f"the device answered HTTP {status}"
            result = http_result(device, command, body)
            return ("OK", result) if result is not None else ("DELIVERED", None)
        if device.get("transport") == "MQTT":
            if self.mqtt is None:
                return "ERROR", "no MQTT broker is configured (CITYOS_IOT_MQTT_URL)"
            await self.mqtt.publish(command_topic(device), payload)
            return "DELIVERED", None
        return "ERROR", "the device has no endpoint and does not use MQTT"
