"""The serving process collects its young generation at the configured pace (ADR 0014)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from cityos.app import create_app
from cityos.core.settings import Settings


@pytest.fixture
def thresholds() -> Iterator[tuple[int, int, int]]:
    before = gc.get_threshold()
    yield before
    gc.set_threshold(*before)


def test_the_app_sets_the_young_generation_and_keeps_the_older_ones(
        thresholds: tuple[int, int, int]) -> None:
    gc.set_threshold(700, 11, 12)
    create_app(Settings.load(database_url="sqlite://", gc_young_threshold=12_345))
    assert gc.get_threshold() == (12_345, 11, 12)


def test_zero_keeps_pythons_pace(thresholds: tuple[int, int, int]) -> None:
    gc.set_threshold(700, 10, 10)
    create_app(Settings.load(database_url="sqlite://", gc_young_threshold=0))
    assert gc.get_threshold() == (700, 10, 10)


def test_the_default_pace_is_twenty_thousand() -> None:
    assert Settings.load().gc_young_threshold == 20_000
