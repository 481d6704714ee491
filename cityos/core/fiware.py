"""FIWARE's tenancy headers, read one way by every face that takes them (NGSI v2, the IoT agent).

``Fiware-Service`` names the tenant (lower-cased, as Orion does; empty = the default tenant) and
``Fiware-ServicePath`` a hierarchical path stored as the entity's NGSI-LD ``scope`` (``/``, the
root, is no scope).  One rule for both faces means a device provisioned under a service and path
is found by a v2 client asking with the same headers.  The messages are Orion's.
"""

from __future__ import annotations

import re

_SERVICE = re.compile(r"^[A-Za-z0-9_]{1,50}$")
_PATH_LEVEL = re.compile(r"^[A-Za-z0-9_]{1,50}$")
MAX_PATHS = 10
MAX_LEVELS = 10


class FiwareHeaderError(ValueError):
    """A Fiware-Service or Fiware-ServicePath value that breaks the rules (its text says why)."""


def tenant_of_service(service: str | None) -> str:
    """The tenant a ``Fiware-Service`` value names ('' = the default tenant)."""
    if not service:
        return ""
    if not _SERVICE.match(service):
        raise FiwareHeaderError("bad character in tenant name")
    return service.lower()


def check_service_path(path: str, *, query: bool) -> str:
    """``path`` when it is a valid service path (``/#`` subtrees only in queries)."""
    if not path.startswith("/"):
        raise FiwareHeaderError(
            "Only /absolute/ Service Paths allowed [a service path must begin with /]")
    body = path[1:]
    if query and (body == "#" or body.endswith("/#")):
        body = body[:-1].rstrip("/")
    elif "#" in body:
        raise FiwareHeaderError("a service path may only end in /# (and only in queries)")
    if body:
        levels = body.split("/")
        if len(levels) > MAX_LEVELS:
            raise FiwareHeaderError("too many components in ServicePath")
        for level in levels:
            if not _PATH_LEVEL.match(level):
                raise FiwareHeaderError("a component of ServicePath contains an illegal character")
    return path


def write_service_path(raw: str | None) -> str:
    """The one service path of a write (default ``/``; ``#`` and several paths not allowed)."""
    raw = (raw or "").strip()
    if not raw:
        return "/"
    if "," in raw:
        raise FiwareHeaderError("more than one service path in context update request")
    return check_service_path(raw if raw == "/" else raw.rstrip("/"), query=False)


def scope_of_path(path: str) -> list[str] | None:
    """The NGSI-LD scope stored for a write service path (``/`` is no scope)."""
    return None if path == "/" else [path]
