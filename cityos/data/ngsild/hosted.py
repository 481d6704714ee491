"""Finding contexts the broker hosts itself, whatever host name the caller used to reach it.

A context hosted through ``/jsonldContexts`` is named by a URL on this server; behind a proxy or
with ``localhost`` vs ``127.0.0.1`` the caller's URL differs from the one recorded at creation, so
a URL whose path is ``/ngsi-ld/v1/jsonldContexts/{id}`` is also looked up by its id.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from cityos.data.ngsild.context import StoredLookup
from cityos.data.ngsild.store.base import EntityStore

HOSTED_PATH = "/ngsi-ld/v1/jsonldContexts/"


def hosted_context_lookup(store: EntityStore) -> StoredLookup:
    """A resolver hook: stored context by exact URL, else by the id in a self-hosted URL."""

    async def lookup(url: str) -> Any | None:
        document = await store.context_by_url(url)
        if document is not None:
            return document
        path = urlsplit(url).path
        if path.startswith(HOSTED_PATH):
            record = await store.get_context("", path[len(HOSTED_PATH):])
            if record is not None:
                return record["document"]
        return None

    return lookup
