"""``python -m cityos.dispatcher FD``: the notification dispatcher process (ADR 0017).

The server starts it when ``CITYOS_NOTIFIER=process`` (data/ngsild/notify/process_link.py), with
its end of a socket pair as FD.  Like ``app.py`` this is a composition root: it wires the
dispatcher (data/ngsild/notify/process_side.py) to the NGSI v2 face and to the owner checks of
the identity block.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Callable
from typing import Any

from cityos.data.ngsild.notify.process_side import Parts, serve
from cityos.data.ngsild.subscriptions import Subscription, render_notification
from cityos.data.ngsiv2 import dispatcher_face
from cityos.ops.gc_tuning import tune_garbage_collector

V2_TERM_MAP = "ngsi-v2-term-map"      # the name app.py sends the v2 face's term map under


async def setup(settings: Any, extras: dict[str, Any],
                fired_once: Callable[[Subscription], None]) -> Parts:
    """Process-wide settings, the NGSI v2 face, and the owner checks when access control is on.

    Only the identity tables are opened: tokens, sweeps and purges stay the server's work."""
    # as in the server, where CityOS's own loggers have no handler: warnings and errors only
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: dispatcher: %(message)s")
    tune_garbage_collector(settings.gc_young_threshold)
    parts = Parts()
    term_map = extras.get(V2_TERM_MAP)
    if term_map is not None:
        # v2 subscriptions come as their stored documents, read through the server's term map
        face, renderer, rebuild = dispatcher_face(term_map, fired_once)
        render_notification.register(face, renderer)
        parts.decoders[face] = rebuild
    if settings.insecure_no_auth:
        return parts
    from cityos.auth.owners import OwnerResolver
    from cityos.auth.runtime import build_auth

    auth = build_auth(settings)
    await auth.db.open()
    await auth.evaluator.refresh(force=True)
    parts.access_for, parts.close = OwnerResolver(auth).access_for, auth.db.close
    return parts


def main() -> None:
    # Ctrl-C in a terminal, or a service manager stopping the whole group, reaches this process
    # too: the server stops it itself, after it handed back what it finished (SIGKILL still works)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    fd = int(sys.argv[1])
    try:
        import uvloop
    except ImportError:                 # uvicorn[standard] brings it; plain asyncio also works
        asyncio.run(serve(fd, setup))
    else:
        uvloop.run(serve(fd, setup))


if __name__ == "__main__":
    main()
