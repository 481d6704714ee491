"""Storage URL -> engine.  ``sqlite:///path.db`` (embedded default) or ``postgresql://...``."""

from __future__ import annotations

from urllib.parse import urlsplit

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
