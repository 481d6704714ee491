"""Loading the demo city (``cityos serve --demo``) through the ordinary batch action."""

from __future__ import annotations

from typing import Any

from cityos.core.problems import AlreadyExists
from cityos.data.ngsild import Broker, ContextResolver, TermMap, batch_create, utc_now


def preload_demo_contexts(resolver: ContextResolver) -> None:
    """Make the demo's @context URLs resolvable offline."""
    from cityos.data.demo import demo_contexts

    for url, document in demo_contexts().items():
        resolver.preload(url, document)


async def load_demo(broker: Broker, tenant: str = "") -> int:
    """Create the demo entities that are not there yet; how many the city now holds.

    Entities left from an earlier start stay as they are: a restart neither resets what a user
    changed nor appends another copy of every attribute to the temporal history (a replacing
    upsert did both).
    """
    from cityos.data.demo import demo_entities

    preload_demo_contexts(broker.resolver)
    entities = demo_entities()

    async def term_map_for(context: Any) -> TermMap:
        return await broker.resolver.term_map(context)

    await register_demo_context(broker, tenant)
    loaded = 0
    size = broker.settings.max_batch_size
    for start in range(0, len(entities), size):
        result = await batch_create(broker, tenant, entities[start:start + size], term_map_for)
        failed = [e for e in result.errors if e["error"]["type"] != AlreadyExists.type_uri]
        if failed:
            raise RuntimeError(f"demo data failed to load: {failed[:3]}")
        loaded += len(result.success) + len(result.errors)
    return loaded


DEMO_CONTEXT_ID = "kobe-demo"


async def register_demo_context(broker: Broker, tenant: str = "") -> str:
    """Host one context combining every demo model's context, at
    ``/ngsi-ld/v1/jsonldContexts/kobe-demo``, so callers can name all demo types and attributes
    with short terms through a single ``Link`` header."""
    from cityos.data.demo import demo_contexts

    url = f"/ngsi-ld/v1/jsonldContexts/{DEMO_CONTEXT_ID}"  # stored by path, like every hosted one
    document = {"@context": sorted(demo_contexts())}
    await broker.store.put_context(tenant, DEMO_CONTEXT_ID, url, "Hosted", document, utc_now())
    return url
