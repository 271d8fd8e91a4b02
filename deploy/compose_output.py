"""Compose's output as the user reads it: its own lines indented, a crash turned into one line.

Compose v1 is a Python program: when it cannot reach the Docker engine (no
socket at ``DOCKER_HOST``, or the default one), it dies with three chained
tracebacks, about 60 lines, the last of which says ``Error while fetching
server API version``. Compose v2 and the docker CLI say ``Cannot connect to the
Docker daemon``. :class:`ComposeOutput` copies compose's lines to stderr as
they come, but holds a traceback back until compose exits: the caller then
asks :func:`engine_unreachable` and either reports one line that says what
to do (:func:`unreachable_message`) or lets the held lines through
(:meth:`ComposeOutput.flush_held`), so nothing else is hidden.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Mapping

#: Compose's own lines ("Recreating ...", "Stopping ...") are indented under the CLI's
#: progress lines, so the two read as one story instead of interleaving.
OUTPUT_INDENT = "    | "
TRACEBACK = "Traceback (most recent call last):"
#: What compose v1 (docker-py), compose v2 and the docker CLI say when no engine answers.
UNREACHABLE_MARKERS = (
    "Error while fetching server API version",
    "Cannot connect to the Docker daemon",
    "Couldn't connect to Docker daemon",
)
#: Lines kept for the error message; a traceback is a few dozen.
KEEP_LINES = 400


class ComposeOutput:
    """Compose's lines: written indented at once, except a traceback, held until the end."""

    def __init__(self, write: Callable[[str], None]) -> None:
        self._write = write
        self.lines: collections.deque[str] = collections.deque(maxlen=KEEP_LINES)
        self.held: list[str] = []

    def feed(self, line: str) -> None:
        text = line.rstrip()
        if not text.strip():
            return
        self.lines.append(text)
        if self.held or text.startswith(TRACEBACK):
            self.held.append(text)
        else:
            self._write(OUTPUT_INDENT + text + "\n")

    def text(self) -> str:
        return "\n".join(self.lines)

    def flush_held(self) -> None:
        """Let a held traceback through: it was not one this module explains."""
        held, self.held = self.held, []
        for text in held:
            self._write(OUTPUT_INDENT + text + "\n")


def engine_unreachable(output: str) -> bool:
    """Compose failed because no Docker engine answered where it looked."""
    return any(marker in output for marker in UNREACHABLE_MARKERS)


def unreachable_message(environ: Mapping[str, str]) -> str:
    """One line: where compose looked for the engine, and how to point it elsewhere."""
    host = environ.get("DOCKER_HOST", "").strip()
    where = f"DOCKER_HOST={host}" if host else "the default socket /var/run/docker.sock"
    return (
        f"compose cannot reach the Docker engine at {where}: start Docker, or set DOCKER_HOST "
        "to its socket (e.g. unix:///run/user/1000/docker.sock); `bluegreen init` records "
        "DOCKER_HOST in .env for compose and the CLI"
    )
