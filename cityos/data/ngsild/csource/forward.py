"""Sending requests to registered context sources: ``Via``, headers, SSRF guard, warnings.

Every forwarded request carries ``Via: 1.1 <this broker>`` appended to the caller's ``Via``
(clause 6.3.18), the tenant (the registration's ``tenant`` or the caller's), the caller's ``Link``
``@context`` and the registration's ``contextSourceInfo`` headers.  The endpoint is checked with
the notification SSRF policy (``CITYOS_NOTIFICATION_ALLOW`` / ``_DENY``) before every request,
names resolved, so a registration cannot make the broker reach internal services.

Failures never raise: each becomes a :class:`Reply` with an ``NGSILD-Warning`` entry
(clause 6.3.17): ``199`` no usable answer in time (timeout, refused connection), ``299`` an error
status from the source, ``111`` a success whose payload is not valid JSON or is larger than
``CITYOS_FEDERATION_MAX_ANSWER_BYTES`` (answers are streamed and cut off there, so a source cannot
make the broker buffer without limit).  A 404 is not abnormal.  ``management.timeout`` may only
shorten ``CITYOS_FEDERATION_TIMEOUT``, which also bounds the whole exchange, not each read.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import orjson
from starlette.requests import Request

from cityos.core.problems import Problem
from cityos.data.ngsild.csource.index import RegistrationIndex, index_of
from cityos.data.ngsild.csource.model import Registration
from cityos.data.ngsild.payload import utc_now

API = "/ngsi-ld/v1"
_PASSED_HEADERS = ("link", "content-type")


async def read_capped(response: httpx.Response, cap: int) -> bytes | None:
    """The body of a streamed ``response``, or None as soon as it exceeds ``cap`` bytes."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > cap:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def endpoint_policy(settings: Any) -> Any:
    """The notification SSRF policy (notify/policy.py), which also guards forwarding targets.

    Imported when first needed: the notify package imports the entity routes, which import this
    package, so a module-level import would be circular.
    """
    from cityos.data.ngsild.notify import EndpointPolicy

    return EndpointPolicy.from_settings(settings)


def broker_name(settings: Any) -> str:
    """This broker's name in ``Via`` headers."""
    name = str(settings.federation_id or f"cityos-{settings.host}-{settings.port}")
    return re.sub(r"[^A-Za-z0-9._:-]", "-", name)      # one token of a Via header


def via_names(request: Request) -> list[str]:
    """The ``received-by`` names of the request's ``Via`` header (RFC 9110 7.6.3)."""
    names: list[str] = []
    for value in request.headers.getlist("via"):
        for hop in value.split(","):
            parts = hop.strip().split()
            if len(parts) >= 2:
                names.append(parts[1])
    return names


def passed_through(request: Request, name: str) -> bool:
    """Whether the request already went through the broker called ``name`` (a loop)."""
    return name in via_names(request)


@dataclass
class Reply:
    """What one context source answered (or why it did not)."""

    reg: Registration
    status: int | None = None
    body: Any = None
    headers: httpx.Headers | None = None
    warning: str | None = None

    @property
    def ok(self) -> bool:
        """A 2xx answer with a usable body."""
        return self.status is not None and 200 <= self.status < 300 and self.warning is None


class Forwarder:
    """Sends one caller's request on to registrations, in parallel, within the timeout."""

    def __init__(self, request: Request, index: RegistrationIndex, tenant: str) -> None:
        self.request = request
        self.index = index
        self.tenant = tenant
        self.name = broker_name(index.settings)
        self.policy = endpoint_policy(index.settings)

    def headers(self, reg: Registration, *, body: bool = False) -> dict[str, str]:
        """Headers of a request forwarded to ``reg``."""
        out: dict[str, str] = {"Accept": "application/json"}
        for name in _PASSED_HEADERS if body else ("link",):
            value = self.request.headers.get(name)
            if value:
                out[name.title()] = value
        tenant = reg.doc.get("tenant") or self.tenant
        if tenant:
            out["NGSILD-Tenant"] = tenant
        out.update(reg.headers())
        previous = ", ".join(self.request.headers.getlist("via"))
        out["Via"] = f"{previous}, 1.1 {self.name}" if previous else f"1.1 {self.name}"
        return out

    async def send(self, reg: Registration, method: str, path: str, *,
                   params: list[tuple[str, str]] | None = None,
                   content: bytes | None = None) -> Reply:
        """One request to ``reg``'s endpoint; failures become warnings, never exceptions."""
        reply = Reply(reg)
        try:
            await self.policy.check_resolved(reg.endpoint)
        except Problem as refused:
            reply.warning = self._warning(299, reg, f"endpoint refused: {refused.detail[:160]}")
            return self._count(reply)
        except OSError as exc:
            reply.warning = self._warning(199, reg, f"endpoint does not resolve: {exc}"[:200])
            return self._count(reply)
        management = reg.doc.get("management") or {}
        ceiling = self.index.settings.federation_timeout
        timeout = min(management.get("timeout", ceiling * 1000) / 1000, ceiling)
        cap = self.index.settings.federation_max_answer_bytes
        query = list(params or ())
        if management.get("localOnly"):       # the source answers from its own data only
            query = [(k, v) for k, v in query if k != "local"] + [("local", "true")]
        try:
            async with asyncio.timeout(timeout), self.index.client().stream(
                    method, reg.endpoint + API + quote(path, safe="/:@"), params=tuple(query),
                    content=content, headers=self.headers(reg, body=content is not None),
                    timeout=httpx.Timeout(timeout, connect=min(timeout, 2.0))) as response:
                raw = await read_capped(response, cap)
        except (httpx.TimeoutException, TimeoutError):
            reply.warning = self._warning(199, reg, f"no answer within {timeout:g} s")
            return self._count(reply)
        except httpx.HTTPError as exc:
            reply.warning = self._warning(199, reg, f"unreachable ({type(exc).__name__})")
            return self._count(reply)
        reply.status, reply.headers = response.status_code, response.headers
        if raw is None:
            reply.warning = self._warning(111, reg, f"the answer is larger than {cap} bytes")
            return self._count(reply)
        if raw:
            try:
                reply.body = orjson.loads(raw)
            except orjson.JSONDecodeError:
                if response.is_success:
                    reply.warning = self._warning(111, reg, "the answer is not valid JSON")
        if response.status_code >= 400 and response.status_code != 404:
            reply.warning = self._warning(299, reg, f"answered {response.status_code}")
        return self._count(reply)

    async def send_all(self, calls: list[tuple[Registration, str, str,
                                               list[tuple[str, str]] | None, bytes | None]]
                       ) -> list[Reply]:
        """Several :meth:`send` calls at once."""
        return list(await asyncio.gather(*(self.send(reg, method, path, params=params,
                                                     content=content)
                                           for reg, method, path, params, content in calls)))

    def _warning(self, code: int, reg: Registration, text: str) -> str:
        # a header value: ASCII only (ids may hold Japanese), no quotes inside the quoted text
        text = f"{reg.id}: {text}".replace('"', "'").replace("\\", "/")
        text = quote(text, safe=" !#$&'()*+,-./:;<=>?@[]^_`{|}~")
        return f'{code} {self.name} "{text}"'

    @staticmethod
    def _count(reply: Reply) -> Reply:
        status = reply.reg.status
        now = utc_now()
        status["timesSent"] = status.get("timesSent", 0) + 1
        if reply.warning is None:
            status["lastSuccess"] = now
            status["status"] = "ok"
        else:
            status["timesFailed"] = status.get("timesFailed", 0) + 1
            status["lastFailure"] = now
            status["status"] = "failed"
        return reply


def warning_header(replies: list[Reply]) -> dict[str, str]:
    """``{"NGSILD-Warning": ...}`` for the replies that failed, and the warnings the sources
    themselves passed on (a source federating further), or ``{}``."""
    warnings = [r.warning for r in replies if r.warning]
    warnings += [r.headers["ngsild-warning"] for r in replies
                 if r.headers is not None and "ngsild-warning" in r.headers]
    return {"NGSILD-Warning": ", ".join(warnings)} if warnings else {}


class SourceQuestion:
    """One incoming request that registered sources may help answer (a read or a discovery):
    the registrations in play, the forwarder to reach them, and the replies collected so far.

    ``loop`` is true when the request already passed through this broker (``Via``): it is then
    answered locally only, so two brokers registering each other cannot loop (clause 6.3.18).
    """

    def __init__(self, request: Request, regs: list[Registration], tenant: str) -> None:
        self.forwarder = Forwarder(request, index_of(request.app), tenant)
        self.request = request
        self.regs = regs
        self.replies: list[Reply] = []
        self.loop = passed_through(request, self.forwarder.name)

    @property
    def headers(self) -> dict[str, str]:
        """Headers to add to the response (``NGSILD-Warning``)."""
        return warning_header(self.replies)
