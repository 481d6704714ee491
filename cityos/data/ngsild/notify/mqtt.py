"""Sending notifications to MQTT brokers (``mqtt://host:port/topic``, ``mqtts://...``).

NGSI-LD's MQTT binding wraps the notification in an envelope, because MQTT 3.1.1 has no headers::

    {"metadata": {"Content-Type": "application/json", "Link": "...", <receiverInfo>...},
     "body": {<the notification>}}

``notifierInfo`` may carry ``MQTT-QoS`` (0, 1 or 2; default 0) and ``MQTT-Version``
(``mqtt3.1.1``, the default, or ``mqtt5.0``); ``MQTT-Envelope: none`` publishes the body alone
(NGSI v2 subscriptions: Orion's MQTT notifications have no envelope).  There is one connection
per broker (host, port, credentials, TLS, protocol version), opened at the first notification
and opened again at the next attempt after it dropped; QoS 1 and 2 publishes wait for the
broker's acknowledgement, so a success means the broker has the message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import uuid
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import aiomqtt
import orjson

from cityos.core.problems import BadRequestData
from cityos.data.ngsild.notify.errors import DeliveryFailed
from cityos.data.ngsild.notify.policy import DEFAULT_PORTS, EndpointPolicy

log = logging.getLogger(__name__)

VERSIONS = {"mqtt3.1.1": aiomqtt.ProtocolVersion.V311, "mqtt5.0": aiomqtt.ProtocolVersion.V5}


@dataclass(frozen=True)
class BrokerKey:
    """What makes two endpoints share a connection."""

    scheme: str
    host: str
    port: int
    username: str | None
    password: str | None
    version: str


def mqtt_options(notifier_info: list[tuple[str, str]]) -> tuple[int, str]:
    """QoS and protocol version from ``notifierInfo``; unknown values fall back to the defaults."""
    info = {k: v for k, v in notifier_info}
    qos_text = str(info.get("MQTT-QoS", "0")).strip()
    qos = int(qos_text) if qos_text in ("0", "1", "2") else 0
    version = info.get("MQTT-Version", "mqtt3.1.1")
    return qos, version if version in VERSIONS else "mqtt3.1.1"


class _Broker:
    """One connection to one broker; connects lazily and again after it dropped."""

    def __init__(self, key: BrokerKey, policy: EndpointPolicy, uri: str, timeout: float) -> None:
        self.key = key
        self.policy = policy
        self.uri = uri
        self.timeout = timeout
        self._stack: contextlib.AsyncExitStack | None = None
        self._client: aiomqtt.Client | None = None
        self._lock = asyncio.Lock()

    async def client(self) -> aiomqtt.Client:
        async with self._lock:
            if self._client is not None:
                return self._client
            try:
                # checked at every (re)connection: the name may point elsewhere by now
                addresses = await self.policy.resolve(self.uri)
            except BadRequestData as exc:
                raise DeliveryFailed(exc.detail, retry=False) from exc
            except OSError as exc:
                raise DeliveryFailed(f"cannot resolve the broker's host: {exc}") from exc
            tls = None
            hostname = addresses[0]        # plain MQTT: connect to the address just checked
            if self.key.scheme == "mqtts":
                tls = ssl.create_default_context()
                hostname = self.key.host   # TLS verifies the certificate against the name
            client = aiomqtt.Client(
                hostname, self.key.port, username=self.key.username, password=self.key.password,
                identifier=f"cityos-notifier-{uuid.uuid4().hex[:12]}",
                protocol=VERSIONS[self.key.version], tls_context=tls, timeout=self.timeout)
            stack = contextlib.AsyncExitStack()
            try:
                await stack.enter_async_context(client)
            except aiomqtt.MqttError as exc:
                raise DeliveryFailed(f"cannot connect to the MQTT broker: {exc}") from exc
            self._stack, self._client = stack, client
            return client

    async def publish(self, topic: str, payload: bytes, qos: int) -> None:
        client = await self.client()
        try:
            await client.publish(topic, payload, qos=qos, timeout=self.timeout)
        except (aiomqtt.MqttError, TimeoutError) as exc:
            await self.close()             # the next attempt connects again
            raise DeliveryFailed(f"MQTT publish failed: {exc or type(exc).__name__}") from exc

    async def close(self) -> None:
        stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            try:
                await stack.aclose()
            except Exception:              # a broken connection may fail to close; it is gone
                log.debug("closing MQTT connection to %s failed", self.key.host, exc_info=True)


class MqttSender:
    """Publishes notification envelopes, one connection per broker."""

    def __init__(self, policy: EndpointPolicy, timeout: float) -> None:
        self.policy = policy
        self.timeout = timeout
        self._brokers: dict[BrokerKey, _Broker] = {}

    async def send(self, uri: str, metadata: dict[str, str], body: bytes,
                   notifier_info: list[tuple[str, str]]) -> None:
        """Publish ``{"metadata": ..., "body": ...}``; ``body`` is the serialised notification."""
        parts = urlsplit(uri)
        scheme = parts.scheme.lower()
        qos, version = mqtt_options(notifier_info)
        key = BrokerKey(scheme, (parts.hostname or "").lower(), parts.port or DEFAULT_PORTS[scheme],
                        unquote(parts.username) if parts.username else None,
                        unquote(parts.password) if parts.password else None, version)
        broker = self._brokers.get(key)
        if broker is None:
            broker = self._brokers[key] = _Broker(key, self.policy, uri, self.timeout)
        topic = unquote(parts.path.lstrip("/"))
        if ("MQTT-Envelope", "none") in notifier_info:   # NGSI v2 (Orion): the body alone
            payload = body
        else:
            payload = b'{"metadata":' + orjson.dumps(metadata) + b',"body":' + body + b"}"
        await broker.publish(topic, payload, qos)

    async def close(self) -> None:
        """Disconnect from every broker."""
        brokers, self._brokers = list(self._brokers.values()), {}
        for broker in brokers:
            await broker.close()
