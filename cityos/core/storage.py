"""Storage URL -> engine.  ``sqlite:///path.db`` (embedded default) or ``postgresql://...``."""

from __future__ import annotations

from urllib.parse import urlsplit

from cityos.core.settings import Settings

SUPPORTED = ("sqlite", "postgresql", "postgres")


def engine_of(url: str) -> str:
    """``sqlite`` or ``postgresql`` for a database URL; ``ValueError`` for anything else."""
    scheme = urlsplit(url).scheme.split("+")[0]
    if scheme not in SUPPORTED:
        raise ValueError(f"unsupported database URL {url!r}: use sqlite:///path.db or "
                         "postgresql://user@host:port/db")
    return "postgresql" if scheme.startswith("postgres") else "sqlite"


def sqlite_path(url: str) -> str:
    """The file path of a ``sqlite:///`` URL ('' = in memory for ``sqlite://``)."""
    rest = url.split("://", 1)[1]
    if rest in ("", "/", "/:memory:"):
        return ""
    return rest[1:] if rest.startswith("/") else rest


def open_entity_store(settings: Settings):  # type: ignore[no-untyped-def]
    """The NGSI-LD entity store for ``settings.database_url`` (not yet opened)."""
    engine = engine_of(settings.database_url)
    if engine == "sqlite":
        from cityos.data.ngsild.store.sqlite import SQLiteEntityStore

        return SQLiteEntityStore(sqlite_path(settings.database_url),
                                 synchronous=settings.sqlite_synchronous)
    from cityos.data.ngsild.store.postgres import PostgresEntityStore

    return PostgresEntityStore(settings.database_url, min_size=settings.pg_pool_min,
                               max_size=settings.pg_pool_max)
