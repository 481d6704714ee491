"""Fixtures shared by the data block's engine-specific tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cityos.data.ngsild.store.sqlite import SQLiteEntityStore


@pytest.fixture
async def file_store(tmp_path: Path) -> AsyncIterator[SQLiteEntityStore]:
    """An opened SQLite store on a file of its own (closed afterwards)."""
    store = SQLiteEntityStore(str(tmp_path / "store.db"))
    await store.open()
    try:
        yield store
    finally:
        await store.close()
