"""How NGSI v2 names map onto the broker's one data set (ADR 0008).

* **Entity ids**: a v2 id that is already an absolute URI (``urn:ngsi-ld:Room:1``) is the NGSI-LD id
  as is; any other v2 id ``Room1`` is stored as ``urn:ngsi-v2:Room1``.  Going back, the prefix is
  removed.  Characters a URI may not carry (``{}|\\^`` and ``%`` itself) are percent-encoded after
  the prefix, so the rule is reversible for every valid v2 id.  A v2 id may not itself start with
  the prefix (it could not be told apart on the way back).
* **Entity types, attribute and metadata names** expand through the NGSI-LD core context alone
  (``Room`` <-> ``https://uri.etsi.org/ngsi-ld/default-context/Room``); IRIs written through the
  NGSI-LD face with another context come back as the full IRI.
* **Fiware-Service** is the tenant (lower-cased, as Orion does); no header is the default tenant.
* **Fiware-ServicePath** is stored as the entity's NGSI-LD ``scope``; ``/`` (the root) is stored as
  no scope.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

from starlette.requests import Request

from cityos.data.ngsild import TermMap
from cityos.data.ngsiv2.errors import bad_request

V2_PREFIX = "urn:ngsi-v2:"
DEFAULT_TYPE = "Thing"
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:[^\s<>\"{}|\\^`]+$")
# characters kept as they are after the prefix (every printable ASCII a URN may carry)
_SAFE = "!$'()*+,-.:;=@_~[]"
# Orion's field syntax: plain printable ASCII except whitespace, & ? / #; Orion also refuses the
# characters it forbids everywhere (< > " ' = ; ( )) to avoid script injection; 1..256 long
_IDENTIFIER = re.compile(r"^[!$%*+,\-.0-9:@A-Z\[\\\]^_`a-z{|}~]{1,256}$")
# what a term of the v2 face's own @context may carry besides Orion's syntax: any character but
# whitespace, controls and the ones Orion forbids (Japanese dataset terms such as 名称)
_TERM_FORBIDDEN = re.compile(r"[\s\x00-\x1f\x7f-\x9f<>\"'=;()&?/#]")
_IRI_ID = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:.")   # an absolute IRI: a scheme, then anything
_SERVICE = re.compile(r"^[A-Za-z0-9_]{1,50}$")
_PATH_LEVEL = re.compile(r"^[A-Za-z0-9_]{1,50}$")
MAX_PATHS = 10
MAX_LEVELS = 10


def check_identifier(text: object, what: str, tm: TermMap | None = None) -> str:
    """``text`` when it is a valid v2 identifier (id, type, attribute or metadata name/type).

    With ``tm`` (for names: types, attribute and metadata names), a term that the v2 face's
    @context defines is valid too whatever its characters (but whitespace and Orion's forbidden
    ones): ``CITYOS_V2_CONTEXT`` may name Japanese terms. The core context defines ASCII terms
    only, so without that setting Orion's syntax holds unchanged.
    """
    if not isinstance(text, str):
        raise bad_request(f"Invalid JSON type for {what}: it must be a string")
    if not text:
        raise bad_request(f"Empty {what}")
    if len(text) > 256:
        raise bad_request(f"{what} is longer than 256 characters")
    if not _IDENTIFIER.match(text) and not (
            tm is not None and text in tm.terms and not _TERM_FORBIDDEN.search(text)):
        raise bad_request(f"Invalid characters in {what}")
    return text


def to_ld_id(v2_id: str) -> str:
    """The NGSI-LD id of a (valid) v2 entity id."""
    if _URI.match(v2_id) and not v2_id.startswith(V2_PREFIX):
        return v2_id
    return V2_PREFIX + quote(v2_id, safe=_SAFE)


def to_v2_id(ld_id: str) -> str:
    """The v2 id of an NGSI-LD entity id (the inverse of :func:`to_ld_id`)."""
    if ld_id.startswith(V2_PREFIX):
        return unquote(ld_id[len(V2_PREFIX):])
    return ld_id


def entity_id(text: object) -> str:
    """A v2 entity id from a request, checked, as its NGSI-LD id.

    Besides Orion's ASCII ids, an absolute IRI with non-ASCII letters is accepted as it is:
    NGSI-LD ids are IRIs, and an entity written through NGSI-LD as
    ``urn:ngsi-ld:指定緊急避難場所一覧:kobe:1`` must stay addressable through ``/v2/entities/{id}``.
    """
    if isinstance(text, str) and not text.isascii() and len(text) <= 256 \
            and _IRI_ID.match(text) and not _TERM_FORBIDDEN.search(text):
        return text
    checked = check_identifier(text, "entity id")
    if checked.startswith(V2_PREFIX):
        raise bad_request(f"entity ids may not start with {V2_PREFIX} (reserved for the mapping "
                          "to NGSI-LD)")
    return to_ld_id(checked)


def expand_type(tm: TermMap, name: object) -> str:
    """A v2 entity type, checked, as an expanded IRI."""
    return tm.expand(check_identifier(name, "entity type", tm))


def compact(tm: TermMap, iri: str) -> str:
    """An expanded IRI as the v2 name shown to callers."""
    return tm.compact(iri)


# ----------------------------------------------------------------------------- headers

def tenant_of(request: Request) -> str:
    """The tenant named by ``Fiware-Service`` ('' = the default tenant)."""
    service = request.headers.get("fiware-service")
    if service is None or service == "":
        return ""
    if not _SERVICE.match(service):
        raise bad_request("bad character in tenant name")
    return service.lower()


def _check_path(path: str, *, query: bool) -> str:
    if not path.startswith("/"):
        raise bad_request("Only /absolute/ Service Paths allowed [a service path must begin with /]")
    body = path[1:]
    if query and (body == "#" or body.endswith("/#")):
        body = body[:-1].rstrip("/")
    elif "#" in body:
        raise bad_request("a service path may only end in /# (and only in queries)")
    if body:
        levels = body.split("/")
        if len(levels) > MAX_LEVELS:
            raise bad_request("too many components in ServicePath")
        for level in levels:
            if not _PATH_LEVEL.match(level):
                raise bad_request("a component of ServicePath contains an illegal character")
    return path


def write_path(request: Request) -> str:
    """The one service path of a write (default ``/``; ``#`` not allowed)."""
    raw = request.headers.get("fiware-servicepath", "").strip()
    if not raw:
        return "/"
    if "," in raw:
        raise bad_request("more than one service path in context update request")
    path = raw if raw == "/" else raw.rstrip("/")
    return _check_path(path, query=False)


def query_paths(request: Request) -> list[str]:
    """The service paths of a read (default ``/#``: everything; up to 10, comma-separated)."""
    raw = request.headers.get("fiware-servicepath", "").strip()
    if not raw:
        return ["/#"]
    paths = [p.strip() for p in raw.split(",")]
    if len(paths) > MAX_PATHS:
        raise bad_request("too many service paths - a maximum of ten service paths is allowed")
    return [_check_path(p if p == "/" else p.rstrip("/") or "/", query=True) for p in paths]


def scope_of(path: str) -> list[str] | None:
    """The NGSI-LD scope stored for a write service path (``/`` is no scope)."""
    return None if path == "/" else [path]


def paths_of(scope: list[str] | None) -> list[str]:
    """The service paths an entity lives in (no scope = the root ``/``)."""
    return list(scope) if scope else ["/"]


def in_paths(scope: list[str] | None, wanted: list[str]) -> bool:
    """Whether an entity with ``scope`` is visible under any of the query paths ``wanted``."""
    for have in paths_of(scope):
        for path in wanted:
            if path.endswith("#"):
                base = path[:-1].rstrip("/")
                if not base or have == base or have.startswith(base + "/"):
                    return True
            elif have == path:
                return True
    return False


def v2_time(ld_time: str) -> str:
    """A broker timestamp (microseconds) as Orion renders dates (milliseconds, ``Z``)."""
    if len(ld_time) == 27 and ld_time.endswith("Z"):
        return ld_time[:23] + "Z"
    return ld_time
