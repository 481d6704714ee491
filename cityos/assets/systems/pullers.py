"""One puller per kind of external system: fetch everything, return prepared entities.

Paging follows each API's own rules: Orion's ``limit``/``offset`` with ``options=count`` (the
``Fiware-Total-Count`` header says when to stop), NGSI-LD's ``limit``/``offset`` with
``count=true`` (``NGSILD-Results-Count``).  A page shorter than asked for also ends the loop, and
:data:`MAX_PAGES` stops a server that never does.  A paged pull also stops once it holds
:data:`MAX_PULL_ITEMS` entities or has read :data:`MAX_PULL_BYTES`: what it has is imported and
the system's status becomes ``partial`` with the limit named in ``lastError``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from cityos.assets.systems.convert import select, v2_entity
from cityos.assets.systems.fetch import Fetcher, PullError
from cityos.ingest.importers import (
    UNIMPORTABLE,
    ImportReport,
    Mapping,
    Prepared,
    Rejection,
    mapping_from_dict,
    prepare_csv,
    prepare_geojson,
    prepare_records,
)

MAX_PAGES = 1000
MAX_PULL_ITEMS = 100_000              # entities one pull may collect (memory, not the network)
MAX_PULL_BYTES = 128 * 1024 * 1024    # answer bytes one paged pull may read in total
DEFAULT_PAGE = 100
LINK_REL = 'rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'
Puller = Callable[[dict[str, Any], Fetcher], Awaitable[Prepared]]


def _entities(source: str, fmt: str, items: list[dict[str, Any]], context: Any = None,
              stopped: str | None = None) -> Prepared:
    """Entities that are NGSI-LD already, as a :class:`Prepared` (later ids win over earlier).

    ``stopped`` (a pull cut short at a limit) is recorded as a rejection after the last item, so
    the system's status becomes ``partial`` and ``lastError`` says why.
    """
    report = ImportReport(source=source, format=fmt, rows=len(items), context=context)
    if stopped:
        report.rejected.append(Rejection(row=len(items) + 1, reason=stopped))
    unique = {str(item.get("id")): (n, item) for n, item in enumerate(items, start=1)}
    mapping = Mapping(entity_type="", id_template="{id}", context=context)
    return Prepared(report, mapping, sorted(unique.values(), key=lambda pair: pair[0]))


async def _paged(fetcher: Fetcher, url: str, params: dict[str, Any], headers: dict[str, str],
                 size: int, count_header: str) -> tuple[list[dict[str, Any]], str | None]:
    """Every entity (an object with an ``id``) of a ``limit``/``offset`` listing at ``url``,
    and why the pull stopped early (None: it did not).

    Stops at a page shorter than ``size``, when ``count_header`` (the total the server reports)
    is reached, after :data:`MAX_PAGES`, or at :data:`MAX_PULL_ITEMS` / :data:`MAX_PULL_BYTES`.
    """
    items: list[dict[str, Any]] = []
    read = 0
    for page in range(MAX_PAGES):
        params["offset"] = page * size
        body, response = await fetcher.get_json(url, params, headers)
        if not isinstance(body, list):
            raise PullError(f"{url} did not answer an array of entities")
        items.extend(e for e in body if isinstance(e, dict) and "id" in e)
        read += len(response.content)
        if len(items) >= MAX_PULL_ITEMS or read >= MAX_PULL_BYTES:
            del items[MAX_PULL_ITEMS:]
            return items, (f"the pull stopped at the limit of {MAX_PULL_ITEMS} entities or "
                           f"{MAX_PULL_BYTES // 2**20} MiB per run; later entities were not "
                           "pulled (narrow it with type, q or idPattern)")
        total = response.headers.get(count_header)
        if len(body) < size or (total is not None and total.isdigit()
                                and params["offset"] + len(body) >= int(total)):
            break
    return items, None


async def pull_orion_v2(system: dict[str, Any], fetcher: Fetcher) -> Prepared:
    """FIWARE Orion (NGSI v2): ``GET /v2/entities`` page by page, per ``fiware-service``."""
    options = system["options"]
    headers = {"Accept": "application/json"}
    if options.get("service"):
        headers["Fiware-Service"] = options["service"]
    if options.get("servicePath"):
        headers["Fiware-ServicePath"] = options["servicePath"]
    size = options.get("pageSize", DEFAULT_PAGE)
    params: dict[str, Any] = {"limit": size, "options": "count"}
    for key in ("type", "q", "idPattern"):
        if options.get(key):
            params[key] = options[key]
    url = system["url"].rstrip("/") + "/v2/entities"
    items, stopped = await _paged(fetcher, url, params, headers, size, "fiware-total-count")
    return _entities(url, "orion-v2", [v2_entity(e) for e in items], stopped=stopped)


async def pull_ngsi_ld(system: dict[str, Any], fetcher: Fetcher) -> Prepared:
    """Another NGSI-LD broker: ``GET /ngsi-ld/v1/entities?type=…&q=…`` page by page."""
    options = system["options"]
    headers = {"Accept": "application/json"}
    if options.get("tenant"):
        headers["NGSILD-Tenant"] = options["tenant"]
    if options.get("context"):
        headers["Link"] = f"<{options['context']}>; {LINK_REL}"
    size = options.get("pageSize", DEFAULT_PAGE)
    params: dict[str, Any] = {"type": options["type"], "limit": size, "count": "true"}
    if options.get("q"):
        params["q"] = options["q"]
    url = system["url"].rstrip("/") + "/ngsi-ld/v1/entities"
    items, stopped = await _paged(fetcher, url, params, headers, size, "ngsild-results-count")
    return _entities(url, "ngsi-ld", items, options.get("context"), stopped)


async def pull_rest_json(system: dict[str, Any], fetcher: Fetcher) -> Prepared:
    """Any JSON API: the selector picks the items, the mapping makes them entities."""
    options = system["options"]
    body, _ = await fetcher.get_json(system["url"])
    try:
        items = select(body, options.get("selector"))
    except ValueError as exc:
        raise PullError(str(exc)) from None
    return prepare_records(items, mapping_from_dict(options["mapping"]), system["url"])


async def pull_csv(system: dict[str, Any], fetcher: Fetcher) -> Prepared:
    """A CSV file on a web server (e.g. a city's open-data portal), through the CSV importer."""
    options = system["options"]
    response = await fetcher.get(system["url"])
    mapping = mapping_from_dict(options["mapping"]) if options.get("mapping") else None
    name = system["url"].rsplit("/", 1)[-1]
    try:
        return prepare_csv(response.content, filename=_unquote(name),
                           encoding=options.get("encoding"), delimiter=options.get("delimiter"),
                           dataset=options.get("dataset"), mapping=mapping,
                           code=options.get("code"))
    except UNIMPORTABLE as exc:
        raise PullError(str(exc)) from None


async def pull_geojson(system: dict[str, Any], fetcher: Fetcher) -> Prepared:
    """A GeoJSON FeatureCollection on a web server, through the GeoJSON importer."""
    options = system["options"]
    response = await fetcher.get(system["url"])
    mapping = mapping_from_dict(options["mapping"]) if options.get("mapping") else None
    try:
        return prepare_geojson(response.content, filename=_unquote(system["url"]), mapping=mapping,
                               entity_type=options.get("type"),
                               id_property=options.get("idProperty"),
                               dataset=options.get("dataset"), code=options.get("code"))
    except UNIMPORTABLE as exc:
        raise PullError(str(exc)) from None


def _unquote(name: str) -> str:
    from urllib.parse import unquote

    return unquote(name.split("?", 1)[0])


PULLERS: dict[str, Puller] = {
    "orion-v2": pull_orion_v2,
    "ngsi-ld": pull_ngsi_ld,
    "rest-json": pull_rest_json,
    "csv-url": pull_csv,
    "geojson-url": pull_geojson,
}
