"""Run a real CityOS server (``cityos serve``) in a subprocess for end-to-end tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_server(database_url: str, *extra: str, port: int | None = None,
                 env: dict[str, str] | None = None,
                 ready_timeout: float = 30.0) -> tuple[subprocess.Popen[bytes], str]:
    """Start ``cityos serve``; return the process and its base URL once /health answers."""
    port = port or free_port()
    command = [sys.executable, "-m", "cityos", "serve", "--host", "127.0.0.1", "--port", str(port),
               "--database", database_url, *extra]
    process = subprocess.Popen(command, env={**os.environ, **(env or {})},
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + ready_timeout
    while True:
        if process.poll() is not None:
            output = process.stdout.read().decode(errors="replace") if process.stdout else ""
            raise RuntimeError(f"cityos serve exited early with {process.returncode}:\n{output}")
        try:
            if httpx.get(f"{base}/health", timeout=1.0).status_code == 200:
                return process, base
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            stop_server(process)
            raise RuntimeError("cityos serve did not become ready in time")
        time.sleep(0.1)


def stop_server(process: subprocess.Popen[bytes]) -> None:
    """Terminate the server politely, then firmly."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def running_server(database_url: str, *extra: str, env: dict[str, str] | None = None,
                   ready_timeout: float = 30.0) -> Iterator[str]:
    """``start_server`` as a context manager yielding the base URL."""
    process, base = start_server(database_url, *extra, env=env, ready_timeout=ready_timeout)
    try:
        yield base
    finally:
        stop_server(process)
