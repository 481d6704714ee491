"""The @context of the v2 face: what v2 type, attribute and metadata names stand for.

NGSI v2 has no ``@context``: a v2 name such as ``temperature`` must be turned into the IRI the
broker stores (ADR 0002) through one fixed context.  By default that is the NGSI-LD core context
alone; ``CITYOS_V2_CONTEXT`` puts domain contexts (Smart Data Models, Japan's recommended
datasets) in front of it, so data written through NGSI-LD with such a context shows in v2 with
its short names and can be queried by them.

The term map is resolved once at start-up (:meth:`V2Names.resolve`) and then only read: every
route, the subscription parser and the notification renderer use :attr:`V2Names.term_map`, so no
request and no notification waits for a context to be fetched, and all of them agree.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from cityos.core.problems import Problem
from cityos.data.ngsild import ContextResolver, TermMap
from cityos.data.ngsild.context import HOSTED_PREFIX, hosted_path
from cityos.data.ngsild.terms import core_only


class V2ContextError(RuntimeError):
    """A ``CITYOS_V2_CONTEXT`` entry that cannot be resolved (start-up stops)."""


def context_urls(setting: str) -> list[str]:
    """The URLs of a comma-separated ``CITYOS_V2_CONTEXT`` value, in order, blanks dropped."""
    return [url.strip() for url in setting.split(",") if url.strip()]


class V2Names:
    """The one term map of the v2 face, shared by its routes and its subscriptions.

    Until :meth:`resolve` runs it is the core context's (which is also what an empty setting
    resolves to), so code that runs earlier — the subscription registry's start-up load — works.
    """

    def __init__(self) -> None:
        self.urls: list[str] = []
        self.term_map: TermMap = core_only()

    async def resolve(self, resolver: ContextResolver, urls: list[str]) -> TermMap:
        """Resolve ``urls`` (in order, the core context last) and keep the term map.

        Each URL is tried on its own first, so the error names the one at fault; raises
        :class:`V2ContextError` with a message an operator can act on.
        """
        for url in urls:
            await _check(resolver, url)
        term_map = await _term_map(resolver, urls) if urls else core_only()
        self.urls = list(urls)
        self.term_map = term_map
        return term_map


async def _term_map(resolver: ContextResolver, context: Any) -> TermMap:
    try:
        return await resolver.term_map(context)
    except Problem as exc:
        raise V2ContextError(f"CITYOS_V2_CONTEXT cannot be used: {exc.detail}") from None


async def _check(resolver: ContextResolver, url: str) -> None:
    hosted = hosted_path(url)
    if not url.startswith(("http://", "https://")) and hosted is None:
        raise V2ContextError(f"CITYOS_V2_CONTEXT entry {url!r} is neither an http(s) URL nor a "
                             f"hosted {HOSTED_PREFIX}{{id}} path")
    try:
        await resolver.term_map(url)
    except Problem as exc:
        reason = f"no context is hosted at {hosted}" if url.startswith("/") else exc.detail
        raise V2ContextError(f"CITYOS_V2_CONTEXT entry {url!r} cannot be resolved: "
                             f"{reason}") from None


def face_terms(request: Request) -> TermMap:
    """The term map of the v2 face of the app serving ``request`` (core only if none is set)."""
    names: V2Names | None = getattr(request.app.state, "v2_names", None)
    return names.term_map if names is not None else core_only()
