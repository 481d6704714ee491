"""HTTP routes of context source registrations: ``/csourceRegistrations`` (clause 6.8, 6.9)."""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

from cityos.data.ngsild.csource import actions
from cityos.data.ngsild.csource.index import RegistrationIndex, index_of
from cityos.data.ngsild.csource.query import registration_filter
from cityos.data.ngsild.csource.view import read_options, render_registration
from cityos.data.ngsild.negotiation import (
    read_body,
    tenant_of,
)
from cityos.data.ngsild.queryparams import page_bounds
from cityos.data.ngsild.responses import ngsild_route, no_content, page_headers, with_context

BASE = "/ngsi-ld/v1/csourceRegistrations"


def _index(request: Request) -> RegistrationIndex:
    return index_of(request.app)


async def create_registration(request: Request) -> Response:
    """POST /csourceRegistrations."""
    index = _index(request)
    framed = await read_body(request, index.settings.max_body_bytes)
    tm = await request.app.state.broker.resolver.term_map(framed.context)
    reg_id = await actions.create_registration(index, tenant_of(request), framed.body, tm)
    return Response(status_code=201, headers={"Location": f"{BASE}/{quote(reg_id, safe=':')}"})


async def query_registrations(request: Request) -> Response:
    """GET /csourceRegistrations (type, id, idPattern, attrs, q, csf, geo-query, paging)."""
    index = _index(request)
    tm, ctx_url, accept, sys_attrs = await read_options(request, "registration")
    params = request.query_params
    keep = registration_filter(params, tm)
    limit, offset, count = page_bounds(params, index.settings)
    regs = [r for r in await actions.list_registrations(index, tenant_of(request)) if keep(r)]
    page = regs[offset:offset + limit]
    headers = page_headers(request, offset, limit, len(page), len(regs) if count else None)
    body = [render_registration(r, tm, sys_attrs=sys_attrs) for r in page]
    return with_context(body, accept, ctx_url, headers=headers)


async def retrieve_registration(request: Request) -> Response:
    """GET /csourceRegistrations/{id}."""
    tm, ctx_url, accept, sys_attrs = await read_options(request, "registration")
    reg = await actions.get_registration(_index(request), tenant_of(request),
                                         request.path_params["reg_id"])
    return with_context(render_registration(reg, tm, sys_attrs=sys_attrs), accept, ctx_url)


async def update_registration(request: Request) -> Response:
    """PATCH /csourceRegistrations/{id}."""
    index = _index(request)
    framed = await read_body(request, index.settings.max_body_bytes, allow_merge_patch=True)
    tm = await request.app.state.broker.resolver.term_map(framed.context)
    await actions.update_registration(index, tenant_of(request), request.path_params["reg_id"],
                                      framed.body, tm)
    return no_content()


async def delete_registration(request: Request) -> Response:
    """DELETE /csourceRegistrations/{id}."""
    await actions.delete_registration(_index(request), tenant_of(request),
                                      request.path_params["reg_id"])
    return no_content()


ROUTES = [
    ngsild_route(BASE, create_registration, methods=["POST"], name="createCSR"),
    ngsild_route(BASE, query_registrations, methods=["GET"], name="queryCSR"),
    ngsild_route(f"{BASE}/{{reg_id}}", retrieve_registration, methods=["GET"], name="retrieveCSR"),
    ngsild_route(f"{BASE}/{{reg_id}}", update_registration, methods=["PATCH"], name="updateCSR"),
    ngsild_route(f"{BASE}/{{reg_id}}", delete_registration, methods=["DELETE"], name="deleteCSR"),
]
