"""pytest plugin for mutation runs: each test starts with empty memo caches.

mutmut forks every mutant's test run from a process that already ran the tests,
so a memoized label parse would answer from the unmutated code and hide the
mutant. Loaded only by ``[tool.mutmut] pytest_add_cli_args``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from provider.core import labels


@pytest.fixture(autouse=True)
def _fresh_label_cache() -> Iterator[None]:
    """Forget every memoized label parse before the test runs."""
    labels._parse.cache_clear()
    yield
