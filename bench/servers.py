"""The system under test: a ``cityos serve`` subprocess on 127.0.0.1 over a throw-away database.

Both are always removed: the server is terminated (and, should this process die without
cleaning up, the kernel sends it SIGTERM through ``PR_SET_PDEATHSIG``), the SQLite directory is
deleted and the PostgreSQL database is dropped ``WITH (FORCE)``.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from bench import LOOPBACK

PG_ADMIN_URL = f"postgresql://postgres@{LOOPBACK}:5432/postgres"


class ServerFailed(RuntimeError):
    """``cityos serve`` did not start; the message carries the tail of its log."""


def free_port() -> int:
    """A TCP port on the loopback address that nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class Server:
    """A running ``cityos serve``: its base URL, pid, log file and database URL."""

    def __init__(self, process: subprocess.Popen[bytes], base: str, log: Path,
                 database_url: str) -> None:
        self.process, self.base, self.log = process, base, log
        self.database_url = database_url

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@contextmanager
def running_server(database_url: str, workdir: Path, *, ready_timeout: float = 120.0,
                   env: dict[str, str] | None = None) -> Iterator[Server]:
    """Start ``cityos serve`` (one uvicorn worker) and yield it once ``/health`` answers 200."""
    port = free_port()
    log = workdir / f"server-{port}.log"
    command = [sys.executable, "-m", "cityos", "serve", "--host", LOOPBACK, "--port", str(port),
               "--database", database_url]
    server_env = {**os.environ, "CITYOS_LOG_LEVEL": "warning",
                  "CITYOS_CONTEXT_FETCH_ENABLED": "false",
                  "CITYOS_INSECURE_NO_AUTH": "1", **(env or {})}
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=server_env, stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent,
                                   cwd=workdir)  # not the repo: PYTHONPATH may pick a broker
    server = Server(process, f"http://{LOOPBACK}:{port}", log, database_url)
    try:
        deadline = time.monotonic() + ready_timeout
        while True:
            if process.poll() is not None:
                raise ServerFailed(f"cityos serve exited with {process.returncode}:\n"
                                   f"{server.log_tail()}")
            try:
                with httpx.Client(trust_env=False, timeout=1.0) as client:
                    if client.get(f"{server.base}/health").status_code == 200:
                        break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise ServerFailed(f"cityos serve was not ready in {ready_timeout:.0f} s:\n"
                                   f"{server.log_tail()}")
            time.sleep(0.2)
        yield server
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate a server gracefully (it flushes its writes), killing it after 30 s."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def sqlite_database(keep: bool = False) -> Iterator[tuple[str, Path]]:
    """A fresh ``sqlite:///<tmpdir>/bench.db`` URL and its directory, deleted afterwards."""
    workdir = Path(tempfile.mkdtemp(prefix="cityos-bench-sqlite-"))
    try:
        yield f"sqlite:///{workdir}/bench.db", workdir
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)


async def _pg_admin(sql: str, url: str = PG_ADMIN_URL) -> None:
    import asyncpg

    conn = await asyncpg.connect(url, timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def postgres_analyze(url: str) -> None:
    """``ANALYZE`` the bench database: what autovacuum would do shortly after a bulk load (this
    machine's PostgreSQL may run with ``autovacuum = off``, leaving the planner blind)."""
    asyncio.run(_pg_admin("ANALYZE", url))


def postgres_setting(name: str) -> str:
    """The value of one PostgreSQL setting (for the report)."""
    import asyncpg

    async def fetch() -> str:
        conn = await asyncpg.connect(PG_ADMIN_URL, timeout=10)
        try:
            return str(await conn.fetchval(f"SELECT current_setting('{name}')"))
        finally:
            await conn.close()

    return asyncio.run(fetch())


def postgres_available() -> str | None:
    """None when PostgreSQL answers on 127.0.0.1:5432, else the reason it does not."""
    try:
        asyncio.run(_pg_admin("SELECT 1"))
    except Exception as exc:  # any failure means: skip the engine, say why
        return f"{type(exc).__name__}: {exc}"
    return None


@contextmanager
def postgres_database() -> Iterator[tuple[str, Path]]:
    """A throw-away PostgreSQL database (created here, dropped afterwards) and a log directory."""
    name = f"cityos_bench_{os.getpid()}_{secrets.token_hex(3)}"
    workdir = Path(tempfile.mkdtemp(prefix="cityos-bench-pg-"))
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql://postgres@{LOOPBACK}:5432/{name}", workdir
    finally:
        try:
            asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        finally:
            shutil.rmtree(workdir, ignore_errors=True)


def engines(names: str) -> Iterator[tuple[str, Callable[[], Any]]]:
    """(label, fresh-database factory) for each of the comma-separated engine names that can run
    here; PostgreSQL is skipped, with the reason printed, when it does not answer."""
    for engine in names.split(","):
        if engine == "postgresql":
            reason = postgres_available()
            if reason:
                print(f"PostgreSQL skipped: {reason}")
                continue
            print(f"{engine}:", flush=True)
            yield "PostgreSQL", postgres_database
        else:
            print(f"{engine}:", flush=True)
            yield "SQLite", sqlite_database


def report(text: str, write: bool, results: Path) -> None:
    """Print a benchmark's Markdown section, and append it to ``results`` when asked."""
    print(text)
    if write:
        with results.open("a", encoding="utf-8") as out:
            out.write(text)
