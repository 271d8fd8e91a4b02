"""The operator's words for the provider's marks and stages: one table for every surface.

``/status`` keeps its machine names (``retiring``, ``color_retiring``): scripts
read them. What a person reads (``bluegreen status``, the status page) says the
same thing in the same words, from here: before, the CLI showed no mark at all
(``NOTES -``), the page said ``green is retiring``, and a pending promotion's
stage reached both raw (``color_retiring``). Pure: no I/O.
"""

from __future__ import annotations

from provider.core.model import MarkKind
from provider.core.promotion import Stage

#: A color marked so that no automatic switch targets it, in a few words.
MARKS: dict[str, str] = {
    MarkKind.REJECTED: "rolled back",
    MarkKind.RETIRING: "being stopped",
}
#: What follows for a marked color, the same for both kinds.
MARK_CONSEQUENCE = "no automatic switch to it until a new deploy"

#: Why a promotion or rollback waits, as the operator would say it.
STAGES: dict[str, str] = {
    Stage.DISCONNECTED: "Docker is not connected",
    Stage.LABEL_ERRORS: "the labels have errors",
    Stage.NOT_ROUTABLE: "waiting for the new containers to be healthy",
    Stage.TOO_FEW: "fewer healthy containers than bluegreen.replicas",
    Stage.PREVIOUS_NOT_READY: "the previous color is not ready",
    Stage.PREVIOUS_REJECTED: "the previous color was rolled back",
    Stage.PREVIOUS_RETIRING: "the previous color is being stopped",
    Stage.COLOR_REJECTED: "rolled back; waiting for a new deploy",
    Stage.COLOR_RETIRING: "being stopped; waiting for a new deploy",
    Stage.GATES_PENDING: "healthy; gates before the flip running (smoke checks, webhook)",
    Stage.GATE_FAILED: "a gate failed (smoke check or webhook); not promoted",
    Stage.MANUAL: "waiting for an operator (bluegreen.promote=manual)",
    Stage.DISABLED: "automatic switching is off",
    Stage.HOLDING: "healthy; holding before the switch",
}


def mark_word(kind: str) -> str:
    """``rolled back`` / ``being stopped``; an unknown kind as it is, readable."""
    return MARKS.get(kind, kind.replace("_", " "))


def mark_text(color: str, kind: str) -> str:
    """``green: being stopped (no automatic switch to it until a new deploy)``."""
    return f"{color}: {mark_word(kind)} ({MARK_CONSEQUENCE})"


def stage_text(stage: str) -> str:
    """A pending switch's stage in words; an unknown one (a newer provider's) readable."""
    return STAGES.get(stage, stage.replace("_", " "))
