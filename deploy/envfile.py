"""The ``.env`` file next to the compose file: read it, and update keys in it.

Compose reads ``.env`` from the project directory for its own interpolation, so
the values a deployment depends on (the Docker socket, its group, where the
tokens are, each color's image) live there and survive a new shell. The CLI
reads the same file for what the environment does not set. Only the simple
``KEY=VALUE`` form is written (values quoted when needed); reading also accepts
comments, blank lines, ``export KEY=...`` and single or double quotes.

Updates keep every other line as it was, and replace the file atomically
(``deploy/safe_files.py``): a new file is 0600 (it names the token files, and may
hold one); an existing one keeps its owner, group and mode (less any bits for
others), so a ``sudo bluegreen init`` leaves the user's ``.env`` theirs; a
symbolic link stays a link, and the file it names (of the link's owner) is updated.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from deploy.errors import UsageError
from deploy.safe_files import real_path, replace_keeping_owner

NAME = ".env"
_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")
_PLAIN = re.compile(r"^[A-Za-z0-9_./:@%+,=-]*$")


def _unquote(raw: str) -> str:
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        inner = raw[1:-1]
        return inner if raw[0] == "'" else inner.replace('\\"', '"').replace("\\\\", "\\")
    return raw.split(" #", 1)[0].rstrip()


def parse(text: str) -> dict[str, str]:
    """``KEY=VALUE`` pairs of an env file; later lines win, as in compose."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _LINE.match(line)
        if match:
            values[match.group(1)] = _unquote(match.group(2))
    return values


def read(path: Path) -> dict[str, str]:
    """The file's pairs; empty when it does not exist; :class:`UsageError` when unreadable."""
    try:
        return parse(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from exc


def _format(key: str, value: str) -> str:
    if _PLAIN.match(value):
        return f"{key}={value}"
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'{key}="{escaped}"'


def update(path: Path, values: Mapping[str, str], header: str = "") -> None:
    """Set ``values`` in the file (in place of their lines, or appended), atomically.

    :class:`~deploy.errors.UnsafeFile` for a symbolic link the rewrite must not follow.
    """
    path = real_path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        lines = [f"# {line}".rstrip() for line in header.splitlines()] if header else []
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from exc
    pending = dict(values)
    out: list[str] = []
    for line in lines:
        match = _LINE.match(line)
        if match and not line.lstrip().startswith("#") and match.group(1) in values:
            key = match.group(1)
            if key in pending:
                out.append(_format(key, pending.pop(key)))
            continue  # a duplicate of a key we set: drop it, so ours is the one compose reads
        out.append(line)
    out.extend(_format(key, value) for key, value in pending.items())
    data = ("\n".join(out) + "\n").encode()
    try:
        replace_keeping_owner(path, data)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from exc


def beside(compose_files: list[str], environ: Mapping[str, str]) -> Path:
    """Where compose looks for ``.env``: the directory of the first compose file.

    The files come from ``-f``, else ``COMPOSE_FILE``; without either, the
    current directory (compose's own default lookup starts there).
    """
    files = compose_files or [
        f for f in environ.get("COMPOSE_FILE", "").split(os.pathsep) if f.strip()
    ]
    directory = Path(files[0]).parent if files else Path(".")
    return directory / NAME
