"""The API console (SI-CS-1): ``GET /openapi.json`` and a Swagger UI page at ``GET /docs``.

Swagger UI 5 (OpenAPI 3.1) comes from the installed PyPI package ``swagger-ui-bundle-v2`` and is
served from ``/docs/static``: no CDN, nothing copied into the repository, so the console works on
a city network without internet access.  The page sends "Try it out" requests to the server it
was loaded from: the document's ``servers`` is the request's own base URL, and the page's
Content-Security-Policy allows no other origin.
"""

from __future__ import annotations

import importlib.resources
import re
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from cityos.core.http import json_response
from cityos.core.problems import ServiceUnavailable
from cityos.core.settings import Settings
from cityos.gateway.openapi_ngsild import build_openapi

TITLE = "CityOS API コンソール / API console"
_TEMPLATES = Environment(loader=PackageLoader("cityos.gateway", "templates"),
                         autoescape=select_autoescape(["html", "j2"]))
_VERSION_DIR = re.compile(r"^swagger-ui-(\d+)\.(\d+)\.(\d+)$")


def swagger_ui_dir() -> Path | None:
    """The newest Swagger UI 5.x directory of the installed ``swagger-ui-bundle-v2``, if any.

    The distribution ships its files inside the import package ``swagger_ui_bundle`` under
    ``vendor/swagger-ui-<version>/``.  The directory is looked up rather than taken from the
    package's ``swagger_ui_path``, because the older ``swagger_ui_bundle`` distribution installs
    the same import package (with Swagger UI 4, which cannot read OpenAPI 3.1).
    """
    try:
        vendor = Path(str(importlib.resources.files("swagger_ui_bundle").joinpath("vendor")))
    except ModuleNotFoundError:
        return None
    found: list[tuple[tuple[int, ...], Path]] = []
    if vendor.is_dir():
        for child in vendor.iterdir():
            match = _VERSION_DIR.match(child.name)
            if match and int(match[1]) == 5 and (child / "swagger-ui-bundle.js").is_file():
                found.append((tuple(int(g) for g in match.groups()), child))
    return max(found)[1] if found else None


@lru_cache(maxsize=8)
def _document(settings: Settings) -> dict[str, Any]:
    from cityos.gateway.openapi_auth import add_auth

    return add_auth(build_openapi(settings), settings)


async def openapi_json(request: Request) -> Response:
    """GET /openapi.json: the OpenAPI 3.1 document, its server being the one asked."""
    settings: Settings = request.app.state.settings
    server = str(request.base_url).rstrip("/")
    doc = {**_document(settings),
           "servers": [{"url": server, "description": "This CityOS server / このサーバー"}]}
    return json_response(doc, headers={"Cache-Control": "no-cache"})


def _content_security_policy(nonce: str) -> str:
    return "; ".join([
        "default-src 'self'",
        f"script-src 'self' 'nonce-{nonce}'",
        "style-src 'self' 'unsafe-inline'",  # Swagger UI sets style attributes
        "img-src 'self' data:",              # its icons are data: URIs
        "font-src 'self' data:",
        "connect-src 'self'",                # "Try it out" reaches this server only
        "object-src 'none'",
        "base-uri 'self'",
        "frame-ancestors 'self'",
    ])


async def docs(request: Request) -> Response:
    """GET /docs: the Swagger UI console, entirely from local assets."""
    if swagger_ui_dir() is None:
        raise ServiceUnavailable("the API console needs the package swagger-ui-bundle-v2 "
                                 "(pip install swagger-ui-bundle-v2); /openapi.json works without it")
    nonce = secrets.token_urlsafe(16)
    static = request.url_for("docs_static", path="/").path.rstrip("/")
    html = _TEMPLATES.get_template("console.html.j2").render(
        title=TITLE, nonce=nonce, static=static,
        openapi_url=request.url_for("openapi").path,
        redirect_path=request.url_for("docs_oauth2_redirect").path)
    return HTMLResponse(html, headers={"Content-Security-Policy": _content_security_policy(nonce),
                                       "Cache-Control": "no-cache",
                                       "X-Content-Type-Options": "nosniff"})


_REDIRECT_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>CityOS sign-in</title></head>
<body><script src="{script}" nonce="{nonce}"></script></body></html>
"""


async def oauth2_redirect(request: Request) -> Response:
    """GET /docs/oauth2-redirect: where the console's sign-in popup returns with the code.

    Swagger UI's own ``oauth2-redirect.js`` (served from ``/docs/static``) hands the code to the
    opener; the bundle's HTML names that script by a relative path, which would not resolve here.
    """
    nonce = secrets.token_urlsafe(16)
    script = request.url_for("docs_static", path="/").path.rstrip("/") + "/oauth2-redirect.js"
    html = _REDIRECT_PAGE.format(script=script, nonce=nonce)
    # no-store + no-referrer: the URL carries the authorization code (RFC 9700 §4.2.4)
    return HTMLResponse(html, headers={"Content-Security-Policy": _content_security_policy(nonce),
                                       "Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
                                       "X-Content-Type-Options": "nosniff"})


def _routes() -> list[BaseRoute]:
    routes: list[BaseRoute] = [
        Route("/openapi.json", openapi_json, methods=["GET"], name="openapi", include_in_schema=False),
        Route("/docs", docs, methods=["GET"], name="docs", include_in_schema=False),
        Route("/docs/oauth2-redirect", oauth2_redirect, methods=["GET"], name="docs_oauth2_redirect",
              include_in_schema=False),
    ]
    directory = swagger_ui_dir()
    if directory is not None:
        routes.append(Mount("/docs/static", app=StaticFiles(directory=directory), name="docs_static"))
    else:  # keep url_for("docs_static") working; /docs explains what is missing
        routes.append(Route("/docs/static/{path:path}", docs, methods=["GET"], name="docs_static"))
    return routes


ROUTES: list[BaseRoute] = _routes()
