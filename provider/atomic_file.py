"""Replacing a file atomically: the one temp-file, fsync, rename sequence.

Shared by the provider's state file (``provider/store.py``) and the CLI's
rewrites of a user's files (``deploy/safe_files.py``, which may import this
neutral module; the provider never imports ``deploy``). The temporary file is
made beside the target (same filesystem, so ``os.replace`` is atomic) with
``mkstemp`` (``O_EXCL``, mode 0600, a fresh name: a symbolic link planted at
some name is never written through), fsynced before the rename, and removed if
anything fails before it. A crash at any instant leaves the old file or the new
one, never a torn one.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def replace(path: Path, data: bytes, prepare: Callable[[int], None] | None = None) -> None:
    """Make ``path`` hold ``data``; ``prepare(fd)`` runs on the new file first (owner, mode).

    The rename is the commit point. It is not durable across a power loss
    until the directory is fsynced too (:func:`fsync_directory`).
    """
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            if prepare is not None:
                prepare(handle.fileno())
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def fsync_directory(directory: Path) -> None:
    """Make a rename in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
