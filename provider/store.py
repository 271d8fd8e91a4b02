"""The state file: loaded once at boot, snapshotted after every change.

Only the I/O: the bytes are :mod:`provider.core.state_json`'s. Writes go
through :mod:`provider.atomic_file` (a temporary file beside it, fsynced, then
``os.replace``d over the old one, and the directory fsynced), so a crash at any
instant leaves either the old or the new state, never a torn file. A file
that exists but cannot be parsed stops the server: silently starting over
would flip every service back to blue.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from provider import atomic_file
from provider.core import state_json
from provider.core.model import State
from provider.errors import StateFileError


def from_json(doc: Any) -> State:
    """Parse a state document (:mod:`provider.core.state_json`); ``StateFileError`` if bad."""
    try:
        return state_json.from_doc(doc)
    except state_json.StateShapeError as exc:
        raise StateFileError(str(exc)) from exc


def load(path: Path) -> State:
    """Read the state file; a missing file is an empty state, a bad one an error."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return State()
    except OSError as exc:
        raise StateFileError(f"cannot read state file {path}: {exc.strerror}") from exc
    try:
        doc = json.loads(text)
    except RecursionError as exc:
        raise StateFileError(f"state file {path} is nested too deeply to be a state file") from exc
    except json.JSONDecodeError as exc:
        raise StateFileError(
            f"state file {path} is not valid JSON ({exc}); restore it from a backup or "
            "move it away to start with no state (every service then starts from the color "
            "that has routable containers)"
        ) from exc
    try:
        return from_json(doc)
    except StateFileError as exc:
        raise StateFileError(f"{path}: {exc}") from exc


def save(path: Path, state: State) -> str | None:
    """Atomically replace the state file with ``state``.

    The rename is the commit point: once ``os.replace`` returned, the file holds
    ``state`` for every reader, so a failing directory fsync after it does not
    raise (the caller would otherwise answer "not saved" for a state that is
    saved). It is returned instead, for the caller to log and count: only a power
    loss could still undo that rename.
    """
    directory = path.parent
    try:
        directory.mkdir(parents=True, exist_ok=True)
        atomic_file.replace(path, state_json.encode(state))
    except OSError as exc:
        raise StateFileError(f"cannot write state file {path}: {exc.strerror}") from exc
    try:
        atomic_file.fsync_directory(directory)
    except OSError as exc:
        return f"state file {path} was replaced but its directory fsync failed: {exc.strerror}"
    return None


#: Named in startup errors so the user knows which setting to change.
STATE_FILE_SETTING = "--state-file / BLUEGREEN_STATE_FILE"


def check_writable(path: Path) -> None:
    """Fail at startup, not at the first switch, if the state file cannot be written."""
    directory = path.parent
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StateFileError(
            f"cannot create state directory {directory} ({STATE_FILE_SETTING}): {exc.strerror}; "
            "create it, or point --state-file at a writable directory"
        ) from exc
    if not os.access(directory, os.W_OK):
        raise StateFileError(
            f"state directory {directory} is not writable ({STATE_FILE_SETTING}): mount it "
            "read-write, give the provider's user write access, or point --state-file elsewhere"
        )
