"""``POST /ingest/v1/imports``: operators upload a CSV or GeoJSON file; the answer is the report.

The body is the file itself (``text/csv``, ``application/geo+json``, or any type with the format
named in ``format``); options are query parameters: ``filename`` (helps detect the dataset),
``format``, ``dataset``, ``encoding``, ``delimiter``, ``code``, ``type``, ``idProperty``.  A
mapping for other CSVs is given as JSON in the ``mapping`` parameter.  The tenant is the
``NGSILD-Tenant`` header.  200 when something was imported, 422 with the same report when
nothing could be, 400 (problem details) when the file or options cannot be read at all, 413
when the file is larger than :data:`MAX_FILE` (32 MiB; larger files go through `cityos import`).

The body is read through a bounded stream (a too large ``Content-Length`` is refused before any
byte is read) and the CPU-heavy decoding and mapping run in a worker thread, so one upload does
not stall every other request of the server.
"""

from __future__ import annotations

import asyncio

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cityos.core.http import json_response
from cityos.core.problems import BadRequestData, PayloadTooLarge
from cityos.data.ngsild import Broker
from cityos.ingest.importers.decode import UnreadableFile
from cityos.ingest.importers.mapping import MappingError, mapping_from_dict
from cityos.ingest.importers.sinks import BrokerSink, run_import

PATH = "/ingest/v1/imports"
MAX_FILE = 32 * 1024 * 1024
_TOO_LARGE = f"the file exceeds {MAX_FILE // 2**20} MiB; use `cityos import` for larger files"


async def read_bounded(request: Request, limit: int = MAX_FILE) -> bytes:
    """The request body, refused with 413 as soon as it is known to exceed ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(_TOO_LARGE)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(_TOO_LARGE)
        chunks.append(chunk)
    return b"".join(chunks)


async def create_import(request: Request) -> Response:
    """Import the uploaded file into the caller's tenant."""
    from cityos.ingest.importers import prepare_file

    broker: Broker = request.app.state.broker
    tenant = request.headers.get("ngsild-tenant", "")
    if tenant and not all(c.isalnum() or c in "_-." for c in tenant):
        raise BadRequestData(f"invalid NGSILD-Tenant {tenant[:70]!r}")
    data = await read_bounded(request)
    params = request.query_params
    content_type = request.headers.get("content-type", "")
    fmt = params.get("format") or ("geojson" if "json" in content_type else None)
    try:
        mapping = mapping_from_dict(orjson.loads(params["mapping"])) if "mapping" in params else None
        prepared = await asyncio.to_thread(
            prepare_file, data, filename=params.get("filename", ""), format=fmt,
            encoding=params.get("encoding"), delimiter=params.get("delimiter"),
            dataset=params.get("dataset"), mapping=mapping, code=params.get("code"),
            entity_type=params.get("type"), id_property=params.get("idProperty"))
    except orjson.JSONDecodeError:
        raise BadRequestData("the mapping parameter is not valid JSON") from None
    except (UnreadableFile, MappingError) as exc:
        raise BadRequestData(str(exc)) from None
    report = await run_import(prepared, BrokerSink(broker, tenant), broker.settings.max_batch_size)
    return json_response(report.to_dict(), 200 if report.imported else 422)


ROUTES = [Route(PATH, create_import, methods=["POST"], name="createImport")]
