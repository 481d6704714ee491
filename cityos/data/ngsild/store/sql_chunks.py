"""Cutting a long list of statement arguments into chunks whose sizes are powers of two.

A statement with one placeholder group per item has a text of its own for every item count, and
each new text is parsed again (the connection caches the last 128).  Chunks of 256, 128, ... 1
items need at most nine texts, however long the lists.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator


def power_of_two_chunks(total: int, largest: int) -> Iterator[tuple[int, int]]:
    """``(start, size)`` pairs covering ``range(total)``, each size a power of two up to
    ``largest`` (itself a power of two), the largest first."""
    start = 0
    while start < total:
        size = min(largest, 1 << ((total - start).bit_length() - 1))
        yield start, size
        start += size


@functools.cache
def placeholders(size: int) -> str:
    """``(?, ?, ...)`` with ``size`` marks, for ``IN`` lists of one chunk."""
    return f"({', '.join('?' * size)})"
