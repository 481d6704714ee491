"""Sending notifications by HTTP(S) POST, over a minimal HTTP/1.1 client of our own.

Why not a general client: with 100 subscriptions matching every change, the POST itself was the
broker's largest cost.  aiohttp spends about 210 us of CPU per keep-alive POST, httpx about
1.1 ms; writing the request with one ``transport.write`` and parsing the answer with httptools
(uvicorn's C parser, already installed) costs about 60 us on the same machine (2 cores,
measured against ``bench/receiver.py``).  A notification needs very little of HTTP: one POST with
a body whose length is known, a status code, keep-alive.  Redirects are never followed (a 3xx is
a failure: a redirect could lead anywhere), no proxy, no cookies, and the answer's body is read
and dropped.

Two decisions keep one bad receiver from hurting others and keep the SSRF guard honest:

* Connections are pooled per subscription (``pool``): a dead host ties up its own
  subscriptions only.  Each subscription has one request in flight at most (one worker each), so
  a pool holds a single keep-alive connection in practice (up to ``POOL_SIZE`` when a periodic
  and a change notification overlap).  All connections share one TLS context (building one
  loads the CA bundle, ~40 ms).
* The request goes to the address the policy checked, not to whatever the name resolves to a
  moment later (DNS rebinding): the connection is opened to the checked IP, while the ``Host``
  header and, for HTTPS, the TLS server name (so certificates are still verified against the
  name) carry the original host.  What a URI resolves to, and the request head of a
  subscription, are worked out once and cached (``resolve_ttl`` seconds for the address), so the
  hot path is neither a DNS lookup nor URL parsing per notification.

Timeouts: every ``send`` has ``timeout`` seconds in all.  Resolving and connecting (rare: a
kept connection is the rule) run under ``asyncio.timeout_at``; a request on an open connection
instead carries its deadline, and one sweeper task fails the requests that passed it.  An
``asyncio.timeout`` per request cost about 7 % of the broker's CPU with 100 subscriptions
matching every change (a timer handle created and cancelled per POST).  A request that is
cancelled, fails or times out closes its connection, whose state is then unknown.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httptools

from cityos.core.problems import BadRequestData
from cityos.data.ngsild.notify.errors import DeliveryFailed
from cityos.data.ngsild.notify.policy import DEFAULT_PORTS, EndpointPolicy

POOL_SIZE = 4                               # idle connections kept per subscription, at most


@dataclass(slots=True)
class Target:
    """A checked endpoint URI, ready to connect to (cached until ``expires``)."""

    expires: float
    address: str                            # the checked IP to connect to
    port: int
    tls: bool
    server_name: str | None                 # TLS server name (the URI's host)
    request_line: bytes                     # b"POST /path?query HTTP/1.1\r\nHost: ...\r\n"


class _Connection(asyncio.Protocol):
    """One keep-alive connection; one request at a time."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport: Any = None          # asyncio's or uvloop's (not an asyncio.Transport)
        self.waiter: asyncio.Future[int] | None = None
        self.status: int | None = None      # of the answer being read
        self.closed = False
        self.keep_alive = True
        self.served = 0                     # answers read: a kept connection may have gone stale
        self.deadline = 0.0                 # loop time the request in flight must be answered by

    # -- asyncio.Protocol -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ConnectionError(f"malformed HTTP answer: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.status is not None:         # an answer without length ends with the connection
            self._done(self.status)
        self._fail(exc or ConnectionError("the receiver closed the connection"))

    # -- httptools callbacks ----------------------------------------------------------------
    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()

    def on_message_complete(self) -> None:
        self.keep_alive = self.parser.should_keep_alive()
        self.served += 1
        self._done(self.parser.get_status_code())

    # -- use ----------------------------------------------------------------------------------
    async def request(self, data: bytes, deadline: float) -> int:
        """Write one request; the status code of its answer (TimeoutError past ``deadline``,
        raised by the sender's sweeper)."""
        self.waiter = asyncio.get_running_loop().create_future()
        self.deadline = deadline
        self.status = None
        self.transport.write(data)
        return await self.waiter

    @property
    def idle_ok(self) -> bool:
        return not self.closed and self.keep_alive and not (self.transport is None
                                                            or self.transport.is_closing())

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def _done(self, status: int) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(status)

    def _fail(self, exc: BaseException) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)


METHODS = ("POST", "PUT", "PATCH", "GET", "DELETE")


def http_method(notifier_info: list[tuple[str, str]]) -> str:
    """The method named by an ``HTTP-Method`` notifierInfo pair (default and fallback: POST)."""
    for key, value in notifier_info:
        if key == "HTTP-Method" and value in METHODS:
            return value
    return "POST"


class HttpSender:
    """POSTs notification bodies; raises :class:`DeliveryFailed` unless the answer is 2xx."""

    def __init__(self, policy: EndpointPolicy, timeout: float, *, resolve_ttl: float = 30.0,
                 ca_file: str = "") -> None:
        self.policy = policy
        self.ca_file = ca_file      # a city's own CA, trusted besides the system's
        self.timeout = timeout
        self.resolve_ttl = resolve_ttl
        self._idle: dict[Hashable, list[_Connection]] = {}
        self._busy: set[_Connection] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self._resolved: dict[str, Target] = {}
        self._heads: dict[Hashable, tuple[Target, dict[str, str], bytes]] = {}
        # built lazily (loading the CA bundle takes ~40 ms), but at once when a CA file is named,
        # so that a wrong path stops start-up instead of failing every https notification
        self._tls: ssl.SSLContext | None = _tls_context(ca_file) if ca_file else None

    async def send(self, uri: str, body: bytes, headers: dict[str, str], *,
                   pool: Hashable = None, method: str = "POST") -> int:
        """POST ``body`` to ``uri`` with ``headers``, on the connection pool named ``pool``;
        the receiver's (2xx) status.  ``method`` replaces POST (NGSI v2's ``httpCustom``)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        sweeper = self._sweeper
        if sweeper is None or sweeper.done() or sweeper.get_loop() is not loop:
            self._sweeper = loop.create_task(self._sweep(), name="notify-http-timeouts")
        target = self._resolved.get(uri)
        if target is None or target.expires <= time.monotonic():
            async with asyncio.timeout_at(deadline):
                target = await self._target(uri)
        head = self._head(pool, target, headers)
        if method != "POST":                     # the head starts with the request line
            head = method.encode("ascii") + head[4:]
        data = b"".join((head, b"Content-Length: ",
                         str(len(body)).encode(), b"\r\n\r\n", body))
        try:
            status = await self._exchange(pool, target, data, deadline)
        except TimeoutError as exc:              # an OSError too: caught first
            raise DeliveryFailed(f"no answer within {self.timeout:g} s") from exc
        except (OSError, ssl.SSLError) as exc:   # ConnectionError is an OSError
            self._resolved.pop(uri, None)        # the host may have moved: resolve again
            raise DeliveryFailed(f"{type(exc).__name__}: {exc}".rstrip(": ")) from exc
        if not 200 <= status < 300:
            raise DeliveryFailed(f"the receiver answered HTTP {status}")
        return status

    async def _sweep(self) -> None:
        """Fail every request in flight past its deadline (closing its connection)."""
        loop = asyncio.get_running_loop()
        interval = min(0.25, self.timeout / 10)
        while True:
            await asyncio.sleep(interval)
            now = loop.time()
            for conn in [c for c in self._busy if c.waiter is not None and c.deadline <= now]:
                conn._fail(TimeoutError())
                conn.close()

    async def _exchange(self, pool: Hashable, target: Target, data: bytes,
                        deadline: float) -> int:
        idle = self._idle.get(pool)
        while idle:                               # reuse a kept connection if still open
            conn = idle.pop()
            if conn.idle_ok:
                break
            conn.close()
        else:
            conn = await self._connect(target, deadline)
        self._busy.add(conn)
        try:
            try:
                status = await conn.request(data, deadline)
            except ConnectionError:
                if not conn.served or conn.status is not None:
                    raise
                # a kept connection the receiver closed meanwhile: one more try on a fresh one
                conn.close()
                self._busy.discard(conn)
                conn = await self._connect(target, deadline)
                self._busy.add(conn)
                status = await conn.request(data, deadline)
        except BaseException:
            conn.close()                          # cancelled or failed: its state is unknown
            raise
        finally:
            self._busy.discard(conn)
        if conn.idle_ok and len(self._idle.setdefault(pool, [])) < POOL_SIZE:
            self._idle[pool].append(conn)
        else:
            conn.close()
        return status

    async def _connect(self, target: Target, deadline: float) -> _Connection:
        tls: ssl.SSLContext | None = None
        if target.tls:
            if self._tls is None:
                self._tls = _tls_context(self.ca_file)
            tls = self._tls
        async with asyncio.timeout_at(deadline):
            _, conn = await asyncio.get_running_loop().create_connection(
                _Connection, target.address, target.port, ssl=tls,
                server_hostname=target.server_name if tls is not None else None)
        return conn

    def _head(self, pool: Hashable, target: Target, headers: dict[str, str]) -> bytes:
        """Request line and headers, built once per subscription (headers dicts are shared)."""
        cached = self._heads.get(pool)
        if cached is not None and cached[0] is target and cached[1] is headers:
            return cached[2]
        lines = [target.request_line]
        for name, value in headers.items():
            if name.lower() in ("host", "content-length", "transfer-encoding", "connection"):
                continue                          # ours to set
            if any(c in name + value for c in "\r\n\0") or not name or ":" in name:
                raise DeliveryFailed(f"invalid header {name!r}", retry=False)
            lines.append(f"{name}: {value}\r\n".encode())
        head = b"".join(lines)
        if len(self._heads) > 10_000:            # subscriptions are few; this only bounds memory
            self._heads.clear()
        self._heads[pool] = (target, headers, head)
        return head

    async def _target(self, uri: str) -> Target:
        now = time.monotonic()
        try:
            addresses = await self.policy.resolve(uri)
        except BadRequestData as exc:
            raise DeliveryFailed(exc.detail, retry=False) from exc
        except OSError as exc:
            raise DeliveryFailed(f"cannot resolve the endpoint's host: {exc}") from exc
        parts = urlsplit(uri)
        scheme = parts.scheme.lower()
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        authority = parts.netloc.rpartition("@")[2]     # the Host header: never credentials
        request_line = f"POST {path} HTTP/1.1\r\nHost: {authority}\r\n"
        try:
            encoded = request_line.encode("ascii")
        except UnicodeEncodeError as exc:
            raise DeliveryFailed("the endpoint URI is not ASCII", retry=False) from exc
        if len(self._resolved) > 10_000:         # endpoints are few; this only bounds memory
            self._resolved.clear()
        target = Target(now + self.resolve_ttl, addresses[0],
                        parts.port or DEFAULT_PORTS[scheme], scheme == "https",
                        parts.hostname, encoded)
        self._resolved[uri] = target
        return target

    async def discard(self, pool: Hashable) -> None:
        """Close one pool (its subscription was removed)."""
        for conn in self._idle.pop(pool, []):
            conn.close()
        self._heads.pop(pool, None)

    async def close(self) -> None:
        """Close every connection and stop the sweeper."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        pools, self._idle = list(self._idle.values()), {}
        for conn in [c for idle in pools for c in idle] + list(self._busy):
            conn.close()
        self._busy.clear()


def _tls_context(ca_file: str) -> ssl.SSLContext:
    """Certificate checking as usual, plus the CAs in ``ca_file`` when one is named."""
    context = ssl.create_default_context()
    if ca_file:
        context.load_verify_locations(cafile=ca_file)
    return context
