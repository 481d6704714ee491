"""Support for the NGSI v2 end-to-end tests: the Node.js Orion application and a header-keeping receiver.

The application is ``tests/e2e/v2client/orion_app.js`` on Wirecloud's ``ngsijs`` from npm,
installed by ``scripts/setup.sh`` (``npm ci`` in ``tests/e2e/v2client``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.e2e.server import free_port

CLIENT_DIR = Path(__file__).parent / "v2client"


def run_orion_app(*args: str, timeout: float = 60.0) -> dict[str, Any]:
    """Run ``node orion_app.js *args``; return the JSON document it printed (fail loudly otherwise)."""
    node = shutil.which("node")
    assert node, "Node.js is needed for the NGSI v2 client test (node not on PATH)"
    assert (CLIENT_DIR / "node_modules" / "ngsijs").is_dir(), (
        "ngsijs is not installed: run scripts/setup.sh (npm ci in tests/e2e/v2client)")
    done = subprocess.run([node, str(CLIENT_DIR / "orion_app.js"), *args], cwd=CLIENT_DIR,
                          capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"orion_app.js failed:\n{done.stderr}"
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@dataclass
class Notification:
    """One request a subscription sent: its method, headers (lower-case names) and JSON body."""

    method: str
    headers: dict[str, str]
    body: Any


@dataclass
class HeaderReceiver:
    """An HTTP endpoint that keeps every notification with its headers (Orion sends some there)."""

    url: str
    received: list[Notification] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_for(self, predicate: Callable[[list[Notification]], bool],
                 timeout: float = 15.0) -> list[Notification]:
        """Poll until ``predicate(notifications)`` holds (or time runs out); return the list."""
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                seen = list(self.received)
            if predicate(seen) or time.monotonic() > deadline:
                return seen
            time.sleep(0.05)


@contextmanager
def header_receiver() -> Iterator[HeaderReceiver]:
    """A :class:`HeaderReceiver` on 127.0.0.1 (answers 204) until the block ends."""
    port = free_port()
    receiver = HeaderReceiver(url=f"http://127.0.0.1:{port}/notify")

    class Handler(BaseHTTPRequestHandler):
        def _record(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            note = Notification(self.command, {k.lower(): v for k, v in self.headers.items()},
                                json.loads(raw) if raw else None)
            with receiver.lock:
                receiver.received.append(note)
            self.send_response(204)
            self.end_headers()

        do_POST = do_PUT = do_PATCH = _record

        def log_message(self, format: str, *args: Any) -> None:
            """Keep test output quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, name="v2-receiver", daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
