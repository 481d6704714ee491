"""POST /ingest/v1/imports: a 32 MiB cap read through a bounded stream, preparation off-loop."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

import cityos.ingest.importers as importers
from cityos.ingest.importers.routes import MAX_FILE
from tests.ingest.test_import_support import evacuation_csv

IMPORTS = "/ingest/v1/imports"
PROBLEM = "https://uri.etsi.org/ngsi-ld/errors/PayloadTooLarge"


async def test_declared_oversized_file_is_413(client: httpx.AsyncClient) -> None:
    assert MAX_FILE == 32 * 1024 * 1024
    r = await client.post(IMPORTS, content=b"a" * (MAX_FILE + 1),
                          headers={"Content-Type": "text/csv"})
    assert r.status_code == 413
    assert r.json()["type"] == PROBLEM and "cityos import" in r.json()["detail"]


async def test_streamed_oversized_file_is_413(client: httpx.AsyncClient) -> None:

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(40):                      # 40 MiB without a Content-Length
            yield b"x" * (1024 * 1024)

    r = await client.post(IMPORTS, content=chunks(), headers={"Content-Type": "text/csv"})
    assert r.status_code == 413 and r.json()["type"] == PROBLEM


async def test_preparation_runs_in_a_worker_thread(client: httpx.AsyncClient,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    original = importers.prepare_file
    threads: list[int] = []

    def recording(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.get_ident())
        return original(*args, **kwargs)

    monkeypatch.setattr(importers, "prepare_file", recording)
    r = await client.post(IMPORTS, content=evacuation_csv(encoding="cp932"),
                          params={"filename": "kobe.csv"}, headers={"Content-Type": "text/csv"})
    assert r.status_code == 200 and r.json()["created"] == 5
    assert threads and threads[0] != threading.get_ident()
