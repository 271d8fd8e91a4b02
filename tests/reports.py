"""Whether a test has failed so far, for fixtures that print logs at teardown.

``tests/conftest.py``'s ``pytest_runtest_makereport`` hook keeps each phase's
report on the test item; fixtures ask :func:`failed`.
"""

from __future__ import annotations

import pytest

REPORTS_KEY = pytest.StashKey[list[pytest.TestReport]]()


def failed(node: pytest.Item) -> bool:
    """Whether any phase of ``node`` has failed so far."""
    return any(report.failed for report in node.stash.get(REPORTS_KEY, []))
