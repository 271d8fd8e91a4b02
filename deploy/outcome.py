"""What a rollout tells its user: progress lines as it goes, and the outcome at the end.

Shared by ``bluegreen deploy``, ``rollback`` and ``canary`` (through
``deploy/rollout.py``, which re-exports both): one summary line, the ``--json``
document, and the exit code (:data:`STREAMS_CUT_EXIT` when the old color was
stopped with streams still open).
"""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass
from typing import Any, TextIO

from deploy.rollout_api import Clock

#: The exit code of a deploy that switched but cut open streams when it stopped the old color.
STREAMS_CUT_EXIT = 8


class Reporter:
    """Progress lines, each prefixed with the seconds since the command started."""

    def __init__(self, stream: TextIO, clock: Clock = time.monotonic) -> None:
        self.stream = stream
        self.clock = clock
        self.started = clock()

    def elapsed(self) -> float:
        return self.clock() - self.started

    def line(self, text: str) -> None:
        self.stream.write(f"[{self.elapsed():6.1f}s] {text}\n")
        self.stream.flush()


@dataclass(frozen=True)
class Outcome:
    """A finished deploy or rollback, for the summary line and ``--json``."""

    action: str
    service: str
    from_color: str | None
    to_color: str
    seconds: float
    image: str | None = None
    switched_by: str | None = None
    old_stopped: bool = False
    #: The compose flags the user passed (``-f``, ``-p``, ...), for the rollback hint.
    compose_args: tuple[str, ...] = ()
    #: How the old color's drain went (``deploy/drain.py``): None when nothing drained.
    drain: str | None = None
    #: Old containers that were killed with connections open: their streams were cut.
    cut: tuple[str, ...] = ()

    @property
    def exit_code(self) -> int:
        """0, or :data:`STREAMS_CUT_EXIT` when the old color was killed with streams open."""
        return STREAMS_CUT_EXIT if self.cut else 0

    def summary(self) -> str:
        origin = self.from_color or "(new)"
        text = f"{self.action} {self.service}: {origin} → {self.to_color}"
        if self.action == "deployed":
            text += f", image {self.image or '(from the compose file)'}"
        text += f", in {self.seconds:.1f}s"
        if self.old_stopped and self.from_color:
            command = shlex.join(["bluegreen", "rollback", self.service, *self.compose_args])
            text += f" ({self.from_color} stopped; `{command}` restarts it)"
        elif self.action == "deployed" and self.from_color:
            text += f" ({self.from_color} still running)"
        if self.drain:
            text += f"; {self.drain}"
        if self.cut:
            text += (
                f"; WARNING: {len(self.cut)} old container(s) were killed with connections "
                "open, so their streams were cut (make the app close them on SIGTERM, or "
                "raise --drain-timeout or stop_grace_period)"
            )
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "service": self.service,
            "from": self.from_color,
            "to": self.to_color,
            "image": self.image,
            "seconds": round(self.seconds, 3),
            "switched_by": self.switched_by,
            "old_stopped": self.old_stopped,
            "drain": self.drain,
            "cut": list(self.cut),
        }
