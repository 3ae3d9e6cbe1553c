"""pytest plugin for bench.mutate's coverage run: label the data with the running test's node id."""

from __future__ import annotations

from collections.abc import Iterator

import coverage
import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    cov = coverage.Coverage.current()
    if cov is not None:
        cov.switch_context(item.nodeid)  # for every thread and task, unlike test_function
    yield
    if cov is not None:
        cov.switch_context("")
