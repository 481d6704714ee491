"""Fixtures of the gateway tests: the ``browser`` marker for tests that drive Chromium."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives a real Chromium through Playwright "
                                       "(needs /usr/bin/chromium; deselect with -m 'not browser')")
