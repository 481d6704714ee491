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

from cityos.core.fiware import (
    MAX_PATHS,
    FiwareHeaderError,
    check_service_path,
    scope_of_path,
    tenant_of_service,
    write_service_path,
)
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
    try:
        return tenant_of_service(request.headers.get("fiware-service"))
    except FiwareHeaderError as exc:
        raise bad_request(str(exc)) from None


def _check_path(path: str, *, query: bool) -> str:
    try:
        return check_service_path(path, query=query)
    except FiwareHeaderError as exc:
        raise bad_request(str(exc)) from None


def write_path(request: Request) -> str:
    """The one service path of a write (default ``/``; ``#`` not allowed)."""
    try:
        return write_service_path(request.headers.get("fiware-servicepath"))
    except FiwareHeaderError as exc:
        raise bad_request(str(exc)) from None


def query_paths(request: Request) -> list[str]:
    """The service paths of a read (default ``/#``: everything; up to 10, comma-separated)."""
    raw = request.headers.get("fiware-servicepath", "").strip()
    if not raw:
        return ["/#"]
    paths = [p.strip() for p in raw.split(",")]
    if len(paths) > MAX_PATHS:
        raise bad_request("too many service paths - a maximum of ten service paths is allowed")
    return [_check_path(p if p == "/" else p.rstrip("/") or "/", query=True) for p in paths]


scope_of = scope_of_path     # the NGSI-LD scope stored for a write service path


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
