"""MQTT southbound through a real broker (Mosquitto), at-least-once end to end (ED-DT-1).

Topics (FIWARE IoT Agent conventions)::

    /json/{apikey}/{device}/attrs          JSON measures        /{apikey}/{device}/attrs   UltraLight
    /json/{apikey}/{device}/attrs/{attr}   one attribute        /{apikey}/{device}/attrs/{attr}
    /json/{apikey}/{device}/cmdexe         command results      /{apikey}/{device}/cmdexe
    (``/ul/{apikey}/...`` is UltraLight too; commands go out on ``.../{device}/cmd``)

The session is persistent (fixed client id, ``clean_session=False``, QoS 1), so the broker keeps
what devices publish while CityOS is down.  Acknowledgements are manual: the PUBACK of a message
is sent only after its measurements are durable in the store; a message whose write failed is
retried here until it succeeds (a dead database delays PUBACKs, it never loses a message), and a
crash before the PUBACK makes the broker deliver it again after the restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import aiomqtt
import orjson

from cityos.assets.devices import JSON, UL, IotError
from cityos.core.problems import Problem
from cityos.ingest.iot.agent import MAX_MESSAGE, IotAgent
from cityos.ingest.iot.ultralight import UltraLightError, parse_measures

log = logging.getLogger("cityos.iot")
TOPICS = ["/+/+/attrs", "/+/+/attrs/+", "/+/+/cmdexe",
          "/json/+/+/attrs", "/json/+/+/attrs/+", "/json/+/+/cmdexe",
          "/ul/+/+/attrs", "/ul/+/+/attrs/+", "/ul/+/+/cmdexe"]
CommandResult = Callable[[str, str, dict[str, Any]], Awaitable[None]]


def split_topic(topic: str) -> tuple[str | None, str, str, list[str]] | None:
    """(payload kind or None, apikey, device id, rest) of a southbound topic, else None."""
    parts = topic.split("/")
    if len(parts) < 4 or parts[0] != "":
        return None
    if parts[1] in ("json", "ul") and len(parts) >= 5:
        return (JSON if parts[1] == "json" else UL), parts[2], parts[3], parts[4:]
    return None, parts[1], parts[2], parts[3:]


def decode(kind: str, payload: bytes, attr: str | None) -> list[dict[str, Any]]:
    """The measure groups of one message (``attr``: a single-attribute topic)."""
    text = payload.decode("utf-8")
    if attr is not None:
        value: Any = text
        if kind == JSON:
            with contextlib.suppress(orjson.JSONDecodeError):
                value = orjson.loads(payload)
        return [{attr: value}]
    if kind == JSON:
        try:
            data = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            raise IotError("WRONG_SYNTAX", f"invalid JSON: {exc}") from None
        items = data if isinstance(data, list) else [data]
        if not items or not all(isinstance(i, dict) and i for i in items):
            raise IotError("WRONG_SYNTAX", "a JSON measure must be a non-empty object")
        return items
    try:
        return list(parse_measures(text))
    except UltraLightError as exc:
        raise IotError("WRONG_SYNTAX", str(exc)) from None


class MqttSouthbound:
    """The MQTT consumer (and command publisher) of the IoT agent."""

    def __init__(self, agent: IotAgent, url: str, *, client_id: str = "cityos-iot-agent",
                 retry_delay: float = 0.5) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "tcp") or not parts.hostname:
            raise ValueError(f"CITYOS_IOT_MQTT_URL must be mqtt://host:port, got {url!r}")
        self.agent = agent
        self.host, self.port = parts.hostname, parts.port or 1883
        self.username, self.password = parts.username, parts.password
        self.client_id = client_id
        self.retry_delay = retry_delay
        self.client: aiomqtt.Client | None = None
        self.on_command_result: CommandResult | None = None
        self.connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self.messages = 0
        self.rejected = 0

    async def start(self) -> None:
        """Connect in the background (reconnecting forever)."""
        self._task = asyncio.create_task(self._run(), name="iot-mqtt")

    async def stop(self) -> None:
        """Disconnect; unacknowledged messages stay with the broker for the next start."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for task in list(self._handlers):
            task.cancel()
        self._task = None

    def health(self) -> dict[str, Any]:
        """The consumer's part of /health."""
        return {"status": "connected" if self.connected.is_set() else "connecting",
                "broker": f"{self.host}:{self.port}", "messages": self.messages,
                "rejected": self.rejected}

    async def publish(self, topic: str, payload: bytes) -> None:
        """Publish with QoS 1 (commands); raises when not connected."""
        if self.client is None or not self.connected.is_set():
            raise ConnectionError("the MQTT broker is not connected")
        await self.client.publish(topic, payload, qos=1)

    async def _run(self) -> None:
        while True:
            try:
                client = aiomqtt.Client(self.host, self.port, identifier=self.client_id,
                                        clean_session=False, username=self.username,
                                        password=self.password, keepalive=30)
                # PUBACK only when the data is durable: paho sends it when told (ack below)
                client._client.manual_ack_set(True)
                async with client:
                    self.client = client
                    await client.subscribe([(t, 1) for t in TOPICS])
                    self.connected.set()
                    log.info("IoT agent: MQTT consumer connected to %s:%s", self.host, self.port)
                    async for message in client.messages:
                        self._spawn(client, message)
            except aiomqtt.MqttError as exc:
                log.warning("IoT agent: MQTT broker unavailable (%s); retrying", exc)
            finally:
                self.connected.clear()
                self.client = None
            await asyncio.sleep(self.retry_delay)

    def _spawn(self, client: aiomqtt.Client, message: aiomqtt.Message) -> None:
        task = asyncio.create_task(self._handle(client, message))
        self._handlers.add(task)
        task.add_done_callback(self._handlers.discard)

    async def _handle(self, client: aiomqtt.Client, message: aiomqtt.Message) -> None:
        """Process one message; PUBACK it unless the store is unavailable (then retry here).

        A permanent error (bad payload, unknown device, a 4xx from the broker, even a bug such
        as a TypeError) would fail the same way on every redelivery, so the message is
        acknowledged, counted as rejected and logged instead of blocking the session forever.
        """
        self.messages += 1
        while True:
            try:
                await self._process(message)
                break
            except Problem as exc:
                if exc.status >= 500:      # the store is down: no PUBACK yet, try again
                    await asyncio.sleep(self.retry_delay)
                    continue
                self._reject(message, exc.detail)
            except IotError as exc:
                self._reject(message, exc.message)
            except Exception as exc:       # poison message: never redeliver it forever
                self._reject(message, f"{type(exc).__name__}: {exc}")
            break
        if message.qos > 0:
            with contextlib.suppress(Exception):
                client._client.ack(message.mid, message.qos)

    def _reject(self, message: aiomqtt.Message, why: str) -> None:
        self.rejected += 1
        log.warning("IoT agent: MQTT message on %s rejected: %s", message.topic, why[:300])

    async def _process(self, message: aiomqtt.Message) -> None:
        parsed = split_topic(message.topic.value)
        if parsed is None:
            raise IotError("WRONG_SYNTAX", f"unknown topic {message.topic.value[:80]}")
        kind, apikey, device_id, rest = parsed
        payload = bytes(message.payload) if isinstance(message.payload, bytes | bytearray) \
            else str(message.payload).encode()
        if len(payload) > MAX_MESSAGE:
            raise IotError("WRONG_SYNTAX", f"a message may have at most {MAX_MESSAGE} bytes", 413)
        guess = kind or (JSON if payload.lstrip()[:1] in (b"{", b"[") else UL)
        device = await self.agent.resolve(apikey, device_id, protocol=guess, transport="MQTT")
        kind = kind or device.protocol
        if rest == ["cmdexe"]:
            results = decode(kind, payload, None)
            if self.on_command_result is not None:
                await self.on_command_result(device.tenant, device.device_id, results[0])
            return
        attr = rest[1] if len(rest) == 2 and rest[0] == "attrs" else None
        if rest != ["attrs"] and attr is None:
            raise IotError("WRONG_SYNTAX", f"unknown topic {message.topic.value[:80]}")
        groups = decode(kind, payload, attr)
        await self.agent.ingest(device, groups)
