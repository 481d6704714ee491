"""SI-CS-1: ``/openapi.json`` is valid OpenAPI 3.1 and covers every route; ``/docs`` works offline."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import httpx
from openapi_spec_validator import OpenAPIV31SpecValidator
from starlette.routing import Route

from cityos.core.settings import Settings

# every route the app serves is API except the console itself (and routes hidden from the schema):
# a new block's routes are covered without anyone remembering to list them here
API_PATH = re.compile(r"^(?!/docs|/openapi\.json$|/$)")


async def _document(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    doc: dict[str, Any] = response.json()
    return doc


async def test_the_document_is_valid_openapi_3_1(client: httpx.AsyncClient) -> None:
    doc = await _document(client)
    assert doc["openapi"] == "3.1.0"
    OpenAPIV31SpecValidator(doc).validate()  # raises with the first error


async def test_servers_is_the_base_url_of_the_request(client: httpx.AsyncClient) -> None:
    doc = await _document(client)
    assert doc["servers"][0]["url"] == "http://cityos.test"
    other = await client.get("http://other.example:8443/openapi.json")
    assert other.json()["servers"][0]["url"] == "http://other.example:8443"


def _app_operations(app: Any) -> set[tuple[str, str, str]]:
    """(OpenAPI path, method, route name) of every API route the app really serves."""
    found: set[tuple[str, str, str]] = set()
    for route in app.routes:
        if (isinstance(route, Route) and route.include_in_schema
                and API_PATH.match(route.path)):
            path = re.sub(r"\{(\w+)(:\w+)?\}", r"{\1}", route.path)
            for method in (route.methods or set()) - {"HEAD"}:
                found.add((path, method.lower(), route.name))
    return found


def _documented_operations(doc: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(path, method, op["operationId"])
            for path, item in doc["paths"].items()
            for method, op in item.items() if method != "parameters"}


async def test_every_api_route_is_documented_with_its_operation_id(
        client: httpx.AsyncClient, app: Any) -> None:
    served = _app_operations(app)
    documented = _documented_operations(await _document(client))
    assert len(served) >= 27  # the NGSI-LD API of this version plus /health
    assert served - documented == set(), "routes missing from /openapi.json"
    assert documented - served == set(), "/openapi.json documents routes the app does not serve"


async def test_operation_ids_are_unique_and_every_path_parameter_is_declared(
        client: httpx.AsyncClient) -> None:
    doc = await _document(client)
    ids = [op for _, _, op in _documented_operations(doc)]
    assert len(ids) == len(set(ids))
    for path, item in doc["paths"].items():
        declared = {p["name"] for p in item.get("parameters", []) if p["in"] == "path"}
        assert declared == set(re.findall(r"\{(\w+)\}", path)), path


async def test_limits_are_the_servers_own(client: httpx.AsyncClient, settings: Settings) -> None:
    doc = await _document(client)
    limit = doc["components"]["parameters"]["limit"]
    assert limit["schema"]["maximum"] == settings.max_page_size == 200
    assert limit["schema"]["default"] == settings.default_page_size
    assert str(settings.max_page_size) in limit["description"]
    assert doc["components"]["schemas"]["EntityBatch"]["maxItems"] == settings.max_batch_size == 100


class _Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "script" and values.get("src"):
            self.urls.append(values["src"] or "")
        if tag == "link" and values.get("href"):
            self.urls.append(values["href"] or "")
        if tag == "img" and values.get("src"):
            self.urls.append(values["src"] or "")
        self._in_title = tag == "title"

    def handle_endtag(self, tag: str) -> None:
        self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data


async def test_docs_page_uses_local_assets_only(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = _Assets()
    page.feed(response.text)
    assert page.title == "CityOS API コンソール / API console"
    assert page.urls, "the page loads no assets at all?"
    for url in page.urls:
        assert url.startswith("/docs/static/"), url
        assert not url.startswith(("http://", "https://", "//")), url
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", response.text)
    assert '"/openapi.json"' in response.text
    policy = response.headers["content-security-policy"]
    assert "connect-src 'self'" in policy and "default-src 'self'" in policy


async def test_root_sends_people_to_the_console(client: httpx.AsyncClient) -> None:
    response = await client.get("/")
    assert response.status_code in (302, 307)
    assert response.headers["location"] == "/docs"


async def test_swagger_ui_assets_are_served(client: httpx.AsyncClient) -> None:
    js = await client.get("/docs/static/swagger-ui-bundle.js")
    assert js.status_code == 200
    assert "javascript" in js.headers["content-type"]
    assert b"SwaggerUIBundle" in js.content
    css = await client.get("/docs/static/swagger-ui.css")
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    missing = await client.get("/docs/static/nothing-here.js")
    assert missing.status_code == 404


async def test_the_console_is_swagger_ui_5(client: httpx.AsyncClient) -> None:
    """Swagger UI 4 cannot render OpenAPI 3.1; the served bundle must be 5.x."""
    from cityos.gateway.apidocs import swagger_ui_dir

    directory = swagger_ui_dir()
    assert directory is not None and directory.name.startswith("swagger-ui-5.")
    js = await client.get("/docs/static/swagger-ui-bundle.js")
    assert js.content == (directory / "swagger-ui-bundle.js").read_bytes()
