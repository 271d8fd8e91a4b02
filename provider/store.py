"""The state file: loaded once at boot, snapshotted after every change.

Writes go to a temporary file in the same directory, are fsynced, then
``os.replace``d over the old file (and the directory fsynced), so a crash at
any instant leaves either the old or the new state, never a torn file. A file
that exists but cannot be parsed stops the server: silently starting over
would flip every service back to blue.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from provider.core import canary, canary_json
from provider.core.model import Color, ColorMark, MarkKind, ServiceState, State, SwitchRecord
from provider.errors import StateFileError

FORMAT_VERSION = 1


def _record_to_json(record: SwitchRecord) -> dict[str, Any]:
    return record.to_json()


def _record_from_json(raw: Any) -> SwitchRecord:
    if not isinstance(raw, dict):
        raise TypeError("switch record is not an object")
    from_raw = raw["from"]
    return SwitchRecord(
        service=str(raw["service"]),
        from_color=Color(from_raw) if from_raw is not None else None,
        to_color=Color(raw["to"]),
        reason=str(raw["reason"]),
        actor=str(raw["actor"]),
        at=float(raw["at"]),
        seq=int(raw["seq"]),
        detail=dict(raw["detail"]) if raw.get("detail") is not None else None,
        images={str(k): str(v) for k, v in raw["images"].items()}
        if isinstance(raw.get("images"), dict)
        else None,
    )


def _marks_to_json(marks: Mapping[Color, ColorMark]) -> dict[str, Any]:
    return {
        color.value: {"kind": mark.kind.value, "since": mark.since, "reason": mark.reason}
        for color, mark in sorted(marks.items())
    }


def _marks_from_json(raw: Any) -> dict[Color, ColorMark]:
    """Files written before marks existed have none: an absent key is no mark."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise TypeError("marks is not an object")
    return {
        Color(color): ColorMark(MarkKind(m["kind"]), float(m["since"]), str(m["reason"]))
        for color, m in raw.items()
    }


def to_json(state: State) -> dict[str, Any]:
    """The file's JSON document for ``state``."""
    return {
        "version": FORMAT_VERSION,
        "seq": state.seq,
        "services": {
            name: {
                "active": svc.active.value,
                "previous": svc.previous.value if svc.previous else None,
                "first_seen": svc.first_seen,
                "last_switch": _record_to_json(svc.last_switch) if svc.last_switch else None,
                "anchor": svc.anchor,
                "marks": _marks_to_json(svc.marks),
            }
            for name, svc in sorted(state.services.items())
        },
        "history": [_record_to_json(r) for r in state.history],
        **_canaries_to_json(state),
    }


def _canaries_to_json(state: State) -> dict[str, Any]:
    """Files without canaries keep their old shape (no ``canaries`` key)."""
    if not state.canaries:
        return {}
    return {"canaries": {n: canary_json.to_json(c) for n, c in sorted(state.canaries.items())}}


def _canaries_from_json(raw: Any) -> dict[str, canary.Canary]:
    """Files written before canaries existed have none."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise TypeError("canaries is not an object")
    return {str(name): canary_json.from_json(str(name), c) for name, c in raw.items()}


def from_json(doc: Any) -> State:
    """Parse a state document; raises ``StateFileError`` on anything unexpected."""
    try:
        if not isinstance(doc, dict):
            raise TypeError("top level is not an object")
        if doc.get("version") != FORMAT_VERSION:
            raise ValueError(f"unsupported version {doc.get('version')!r}")
        services: dict[str, ServiceState] = {}
        for name, raw in doc["services"].items():
            last = raw.get("last_switch")
            services[str(name)] = ServiceState(
                active=Color(raw["active"]),
                previous=Color(raw["previous"]) if raw.get("previous") else None,
                last_switch=_record_from_json(last) if last else None,
                first_seen=float(raw.get("first_seen", 0.0)),
                anchor=float(raw["anchor"]) if raw.get("anchor") is not None else None,
                marks=_marks_from_json(raw.get("marks")),
            )
        history = tuple(_record_from_json(r) for r in doc["history"])
        canaries = _canaries_from_json(doc.get("canaries"))
        return State(services=services, history=history, seq=int(doc["seq"]), canaries=canaries)
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
        # OverflowError: JSON allows 1e999, which parses as inf and has no int.
        raise StateFileError(f"state file has an unexpected shape: {exc}") from exc


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
    data = json.dumps(to_json(state), sort_keys=True, indent=1).encode()
    directory = path.parent
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
        try:
            with os.fdopen(fd, "wb") as tmp:
                tmp.write(data)
                tmp.flush()
                os.fsync(tmp.fileno())
            os.replace(tmp_name, path)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise StateFileError(f"cannot write state file {path}: {exc.strerror}") from exc
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
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
