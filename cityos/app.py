"""The composition root: builds one ASGI app from the enabled building blocks."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from cityos import __version__
from cityos.assets.devices import ROUTES as DEVICE_ROUTES
from cityos.assets.systems import ROUTES as SYSTEM_ROUTES
from cityos.assets.systems import SystemScheduler
from cityos.auth.middleware import AuthMiddleware
from cityos.auth.owners import OwnerResolver
from cityos.auth.runtime import build_auth
from cityos.core.http import handle_http_exception, handle_problem, handle_unexpected, json_response
from cityos.core.problems import Problem
from cityos.core.settings import Settings
from cityos.data.ngsild import ROUTES as NGSILD_ROUTES
from cityos.data.ngsild import Broker, ContextResolver
from cityos.data.ngsild.csource import close_index
from cityos.data.ngsild.erasure import erase_personal_data
from cityos.data.ngsild.events import BrokerEvents
from cityos.data.ngsild.fanout_sweep import fanout_sweep_loop
from cityos.data.ngsild.guarded import GuardedStore
from cityos.data.ngsild.notify.dispatcher import Notifier
from cityos.data.ngsild.notify.process_link import DispatcherLink, process_mode_problem
from cityos.data.ngsild.store import open_entity_store
from cityos.data.ngsild.subscriptions import SubscriptionRegistry, render_notification
from cityos.data.ngsild.temporal.retention import parse_retention, retention_loop
from cityos.data.ngsiv2 import ROUTES as NGSIV2_ROUTES
from cityos.data.ngsiv2 import V2_FACE
from cityos.data.ngsiv2 import deactivate_oneshot as v2_deactivate_oneshot
from cityos.data.ngsiv2 import install_subscriptions as install_v2_subscriptions
from cityos.data.ngsiv2 import resolve_names as resolve_v2_names
from cityos.data.ngsiv2 import stored_form as v2_stored_form
from cityos.dispatcher import V2_TERM_MAP
from cityos.ingest.importers import ROUTES as IMPORT_ROUTES
from cityos.ingest.iot import ROUTES as IOT_ROUTES
from cityos.ingest.iot import IotRuntime
from cityos.ops.gc_tuning import tune_garbage_collector

log = logging.getLogger("cityos")
INSECURE_WARNING = """
    ************************************************************************************
    *  CITYOS_INSECURE_NO_AUTH is on: authentication and access control are OFF.        *
    *  Every caller may read and change everything, personal data included.             *
    *  Use this only for local development and conformance runs, never in production.   *
    ************************************************************************************"""


async def health(request: Request) -> Response:
    """GET /health: liveness plus the storage engine in use."""
    broker: Broker = request.app.state.broker
    body: dict[str, Any] = {"status": "ok", "version": __version__, "engine": broker.store.engine,
                            "auth": "disabled" if request.app.state.settings.insecure_no_auth
                            else "enabled"}
    if broker.notifier is not None:
        # totals only: the per-subscription backlog names other tenants' subscriptions
        body["notifications"] = {k: v for k, v in broker.notifier.metrics().items()
                                 if k != "backlog"}
        dispatcher = body["notifications"].get("dispatcher")
        if dispatcher is not None and not dispatcher["running"]:
            # still serving (200): the server restarts its dispatcher, and the outbox keeps
            # every change meanwhile, but notifications wait until it is back
            body["status"] = "degraded"
    iot: IotRuntime | None = getattr(request.app.state, "iot_runtime", None)
    if iot is not None:
        body["iot"] = iot.health()
    return json_response(body)


async def root(request: Request) -> Response:
    """GET /: send people to the API console."""
    return RedirectResponse("/docs")


def create_app(settings: Settings | None = None, *, local_cli: bool = False) -> Starlette:
    """A CityOS ASGI application for ``settings`` (defaults from the environment).

    ``local_cli``: the app a local ``cityos`` command runs in-process on a database it opens
    itself; whoever can open the database needs no token, so the identity block stays off
    (ADR 0012 §12: local commands act as the system).
    """
    settings = settings or Settings.load()
    tune_garbage_collector(settings.gc_young_threshold)   # process-wide: this is its server
    store = open_entity_store(settings)
    resolver = ContextResolver(fetch_timeout=settings.context_fetch_timeout,
                               cache_ttl=settings.context_cache_ttl,
                               allow_fetch=settings.context_fetch_enabled)
    resolver.stored_lookup = store.context_by_url  # hosted contexts are stored by path
    parse_retention(settings.history_retention)   # a bad rule stops start-up, not a task later
    registry = SubscriptionRegistry()
    notifier = _notifier(settings, store, registry, local_cli)
    # every entity read and write of a request passes the caller's access (ADR 0013)
    broker = Broker(store=GuardedStore(store), resolver=resolver, settings=settings,
                    registry=registry, notifier=notifier)
    v2_names = install_v2_subscriptions(broker, render_notification)  # same registry as NGSI-LD
    if isinstance(notifier, DispatcherLink):
        # v2 subscriptions cross to the dispatcher process as their stored documents, read there
        # through the face's term map; a oneshot one that fired is stored inactive here
        notifier.codecs[V2_FACE] = v2_stored_form
        notifier.extras[V2_TERM_MAP] = lambda: v2_names.term_map
        notifier.on_fired_once = functools.partial(_oneshot_fired, broker)
    store.observer = BrokerEvents(
        history=settings.history_enabled, matcher=registry, deliver=notifier.submit,
        wants_previous=registry.wants_previous)
    iot = IotRuntime(broker, settings)   # wraps store.observer to hear of command updates
    systems = SystemScheduler(broker, settings.systems_poll_interval)
    auth = build_auth(settings)
    auth.erasure_hooks.append(functools.partial(erase_personal_data, broker))
    # insecure mode has no one to identify: the identity block (accounts, tokens, login, consent,
    # audit) stays off, with its tables untouched (ADR 0013 §7)
    secure = not settings.insecure_no_auth and not local_cli
    if secure:
        notifier.access_for = OwnerResolver(auth).access_for

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if settings.insecure_no_auth:
            log.warning(INSECURE_WARNING)
        await store.open()
        if secure:
            await auth.start()
        if not settings.demo:
            from cityos.ops.demo import preload_demo_contexts

            preload_demo_contexts(resolver)
            # before the registry loads, so v2 subscriptions are parsed once (or start-up stops)
            await resolve_v2_names(broker, v2_names, settings.v2_context, reload=False)
        await registry.load(store, resolver)      # before the notifier: it reads the registry
        if settings.demo:
            from cityos.ops.demo import DEMO_CONTEXT_ID, load_demo

            loaded = await load_demo(broker)
            log.info("demo city ready: %d entities", loaded)
            if secure:                          # demo accounts, clients and credentials file
                from cityos.ops.demo_auth import start_demo_auth

                await start_demo_auth(auth)
            # the demo's hosted context exists only now; /v2 shows the demo city's short names
            await resolve_v2_names(broker, v2_names, settings.v2_context
                                   or f"/ngsi-ld/v1/jsonldContexts/{DEMO_CONTEXT_ID}")
        await notifier.start()
        await iot.start()
        await systems.start()
        retention = asyncio.create_task(retention_loop(store, settings), name="history-retention")
        sweep = asyncio.create_task(fanout_sweep_loop(store), name="fanout-sweep")
        try:
            yield
        finally:
            for task in (retention, sweep):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await systems.stop()
            await iot.stop()
            await notifier.stop()
            await close_index(app)              # csource/: forwarding client
            if secure:
                await auth.stop()
            await store.close()

    routes: list[BaseRoute] = [
        Route("/", root, methods=["GET"], include_in_schema=False),
        Route("/health", health, methods=["GET"]),
        # first: devices post at the highest rate, and Starlette tries routes in order (behind
        # the ~80 NGSI routes, matching cost a fifth of each measurement's CPU time)
        *IOT_ROUTES,
        *NGSILD_ROUTES,
        *NGSIV2_ROUTES,
        *DEVICE_ROUTES,
        *SYSTEM_ROUTES,
        *IMPORT_ROUTES,
        *(auth.routes if secure else []),
        *_docs_routes(),
    ]
    handlers: dict[Any, Any] = {Problem: handle_problem, HTTPException: handle_http_exception,
                                Exception: handle_unexpected}
    middleware = [Middleware(TrailingSlashMiddleware)]
    if secure:
        # after the slash is dropped, so the decision is made on the path the router matches
        middleware.append(Middleware(AuthMiddleware, runtime=auth))
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers=handlers,
                    middleware=middleware)
    app.state.auth = auth
    app.state.broker = broker
    app.state.settings = settings
    app.state.v2_names = v2_names     # the /v2 routes read names through its term map
    app.state.systems = systems
    app.state.iot_runtime, app.state.iot, app.state.devices = iot, iot.agent, iot.devices
    return app


async def _oneshot_fired(broker: Broker, face: str, tenant: str, sub_id: str) -> None:
    """The dispatcher process notified a oneshot subscription (only v2 has them)."""
    if face == V2_FACE:
        await v2_deactivate_oneshot(broker, tenant, sub_id)


def _notifier(settings: Settings, store: Any, registry: SubscriptionRegistry,
              local_cli: bool) -> Notifier | DispatcherLink:
    """The in-process notifier, or the link to a dispatcher process (CITYOS_NOTIFIER, ADR 0017).

    A local command runs in-process for a moment: its notifications stay inline."""
    problem = process_mode_problem(settings)
    if problem is not None:
        raise ValueError(problem)
    if settings.notifier == "process" and not local_cli:
        return DispatcherLink(store, registry, settings)
    return Notifier(store, registry, render_notification, settings,
                    linger=settings.notification_linger,
                    send_rate=settings.notification_send_rate,
                    failing_backlog=settings.notification_failing_backlog)


class TrailingSlashMiddleware:
    """Serve ``/ngsi-ld/v1/entities/`` like ``/ngsi-ld/v1/entities``.

    Some clients (PyPI's ngsildclient among them) add a trailing slash; a redirect would cost a
    round trip on every write, so the slash is dropped before routing instead.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            if len(path) > 1 and path.endswith("/") and path.startswith("/ngsi-ld/"):
                scope = dict(scope)
                scope["path"] = path.rstrip("/")
                if scope.get("raw_path"):
                    scope["raw_path"] = scope["raw_path"].rstrip(b"/")
        await self.app(scope, receive, send)


def _docs_routes() -> list[BaseRoute]:
    try:
        from cityos.gateway.apidocs import ROUTES as DOC_ROUTES
    except ImportError:  # the API docs block is optional
        return []
    return list(DOC_ROUTES)
