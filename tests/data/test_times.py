"""Epoch-microsecond times and the broker's date-time strings (``data/ngsild/times.py``)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from cityos.data.ngsild.times import EPOCH, from_micros, now_micros, to_micros, utc_now


def formatted(micros: int) -> str:
    """The form by definition: datetime's own formatting of the whole value."""
    return (EPOCH + timedelta(microseconds=micros)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@pytest.mark.parametrize("micros", [0, 1, -1, 999_999, 1_000_000, -1_000_000, -1_000_001,
                                    1_795_597_200_000_000, 1_795_597_199_999_999])
def test_from_micros_at_second_edges(micros: int) -> None:
    assert from_micros(micros) == formatted(micros)


def test_from_micros_in_and_across_seconds() -> None:
    rng = random.Random(7)
    base = 1_795_597_200_000_000            # 2026-11-25T09:00:00Z
    # runs within one second (the cached prefix) mixed with jumps far away and back
    values = [base + rng.randrange(0, 3_000_000) for _ in range(2000)]
    values += [rng.randrange(-10**16, 10**17) for _ in range(2000)]
    rng.shuffle(values)
    assert [from_micros(v) for v in values] == [formatted(v) for v in values]


def test_from_micros_reads_back() -> None:
    assert to_micros(from_micros(1_795_597_200_123_456)) == 1_795_597_200_123_456
    assert from_micros(to_micros("2026-11-25T18:00:00.5+09:00")) == "2026-11-25T09:00:00.500000Z"


def test_now_reads_the_wall_clock() -> None:
    before = datetime.now(UTC)
    text, micros = utc_now(), now_micros()
    after = datetime.now(UTC)
    assert text.endswith("Z") and len(text) == len("2026-11-25T09:00:00.000000Z")
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert before <= moment <= after
    assert before <= EPOCH + timedelta(microseconds=micros) <= after
