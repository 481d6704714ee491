"""What the HTTP-speaking sub-commands (``cityos devices``, ``cityos systems``, ``cityos import``)
share: the ``--database`` / ``--url`` options and one way to reach the API behind them.

With ``--url`` requests go to a running server; otherwise to an in-process app on ``--database``,
started with its lifespan for the duration of the command, so no server is needed.  How a failed
request is reported stays with each command (their exit codes and messages differ on purpose).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import httpx
import typer

from cityos.core.settings import Settings

Database = Annotated[str | None, typer.Option(help="Use this database in-process.")]
Url = Annotated[str | None, typer.Option(
    help="Use a running server, e.g. http://127.0.0.1:8080, with the access token in "
         "CITYOS_TOKEN (see docs/auth.md).")]


def token_headers() -> dict[str, str]:
    """``Authorization`` for a running server, from ``CITYOS_TOKEN`` (never a command-line
    argument: those show up in process lists and shell history)."""
    token = os.environ.get("CITYOS_TOKEN", "").strip()
    return {"Authorization": f"Bearer {token}"} if token else {}


def one_target(database: str | None, url: str | None) -> None:
    """Refuse ``--database`` together with ``--url`` (a usage error, exit code 2)."""
    if database and url:
        raise typer.BadParameter("give --database or --url, not both", param_hint="--url")


@asynccontextmanager
async def api_client(database: str | None, url: str | None, headers: dict[str, str],
                     timeout: float, **settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the server at ``url``, or on an in-process app on ``database``.

    ``settings`` are overrides for the in-process app (e.g. ``systems_poll_interval=0.0`` keeps
    its scheduler off); they do not apply to a running server.
    """
    one_target(database, url)
    if url:
        async with httpx.AsyncClient(base_url=url, headers={**token_headers(), **headers},
                                     timeout=timeout) as client:
            yield client
        return
    from cityos.app import create_app  # late: the CLI starts without loading the whole app

    app = create_app(Settings.load(database_url=database, **settings), local_cli=True)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://cityos.local",
                                     headers=headers, timeout=timeout) as client:
            yield client


def request(database: str | None, url: str | None, headers: dict[str, str], timeout: float,
            method: str, path: str, body: Any = None, **settings: Any) -> httpx.Response:
    """Send one request through :func:`api_client` and return the response, whatever its status.

    Raises ``httpx.HTTPError`` when the server cannot be reached.
    """
    async def go() -> httpx.Response:
        async with api_client(database, url, headers, timeout, **settings) as client:
            return await client.request(method, path, json=body)

    return asyncio.run(go())
