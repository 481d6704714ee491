"""Entity storage engines behind one contract (ADR 0003), chosen by the database URL."""

from __future__ import annotations

from cityos.core.settings import Settings
from cityos.core.storage import engine_of, sqlite_path
from cityos.data.ngsild.store.base import EntityStore


def open_entity_store(settings: Settings) -> EntityStore:
    """The NGSI-LD entity store for ``settings.database_url`` (call ``open()`` before use)."""
    if engine_of(settings.database_url) == "sqlite":
        from cityos.data.ngsild.store.sqlite import SQLiteEntityStore

        return SQLiteEntityStore(sqlite_path(settings.database_url),
                                 synchronous=settings.sqlite_synchronous)
    from cityos.data.ngsild.store.postgres import PostgresEntityStore

    store: EntityStore = PostgresEntityStore(settings.database_url, min_size=settings.pg_pool_min,
                                             max_size=settings.pg_pool_max,
                                             self_vacuum=settings.pg_self_vacuum)
    return store
