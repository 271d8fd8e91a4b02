"""Gates before the flip: rules and the invariant, mixed into ``BlueGreenMachine``.

Rules: deploys from now on carry ``bluegreen.smoke`` or ``bluegreen.gate.url`` (or stop
carrying them); one deploy carries the checks (``deploy --smoke``); the smoke checks the
switcher asked for answer, passing or failing, then the gate webhook approves or rejects (the
I/O edge, ``provider/smoke.py``, stands in as :class:`FakeGates`; a provider restart forgets
every result, as the real one does).
Invariant: no automatic switch to a generation before its gates passed: every gated
container (smoke checks, a gate webhook, or both) of a color the watcher promoted was in a
generation whose checks passed and whose webhook approved.
"""

from __future__ import annotations

from typing import Any

from hypothesis import event
from hypothesis import strategies as st
from hypothesis.stateful import invariant, rule

from provider.core.gates import GateResult
from provider.core.labels import RouteSpec
from provider.core.model import Color, ServiceState
from provider.core.promotion import generation_anchor
from provider.gate_hook import Candidate

SMOKE_LABELS = {"bluegreen.smoke": "/healthz"}
GATE_LABELS = {"bluegreen.gate.url": "http://127.0.0.1:9/gate"}


class FakeGates:
    """What the switcher asks of the smoke edge; the machine decides the answers."""

    def __init__(self) -> None:
        self.results: dict[str, GateResult] = {}
        #: The generation each service's gates were last asked for.
        self.asked: dict[str, frozenset[str]] = {}
        #: Whether that generation's route has a gate webhook (asked once its checks passed).
        self.hooked: dict[str, bool] = {}
        #: Generations whose checks passed and whose webhook has not answered yet.
        self.awaiting_hook: dict[str, frozenset[str]] = {}

    def result(self, service: str) -> GateResult | None:
        return self.results.get(service)

    def want(self, candidate: Candidate, route: RouteSpec) -> None:
        service, ids = candidate.service, candidate.ids
        done = self.results.get(service)
        if done is None or done.generation != ids:
            self.asked[service] = ids
            self.hooked[service] = route.gate_url is not None
            self.results[service] = GateResult(ids, finished=False, passed=False)

    def forget(self, keep: set[str]) -> None:
        for name in [n for n in self.results if n not in keep]:
            del self.results[name]
            self.asked.pop(name, None)
            self.awaiting_hook.pop(name, None)


class GateRules:
    """Mixin: needs the machine's ``docker``, ``controller``, ``switcher`` and ``_settle``."""

    docker: Any
    controller: Any
    switcher: Any
    history: list[tuple[str, Color | None, Color, str, str, float]]

    def _settle(self) -> float | None:
        raise NotImplementedError

    def _gates(self) -> FakeGates:
        """The current provider's gates: a restarted provider starts with none."""
        if getattr(self, "_gated_switcher", None) is not self.switcher:
            self._gated_switcher = self.switcher
            self.switcher.gates = FakeGates()
        gates: FakeGates = self.switcher.gates
        return gates

    def _passed(self) -> set[str]:
        passed: set[str] = getattr(self, "_passed_ids", set())
        self._passed_ids = passed
        return passed

    @rule(on=st.booleans())
    def smoke_label(self, on: bool) -> None:
        """The app's next deploys carry ``bluegreen.smoke`` (or no longer do)."""
        self._gates()
        labels = {k: v for k, v in self.docker.extra_labels.items() if k not in SMOKE_LABELS}
        self.docker.extra_labels = {**labels, **SMOKE_LABELS} if on else labels
        self._settle()

    @rule(service=st.sampled_from(("shop", "blog")), passed=st.booleans())
    def gated_rollout(self, service: str, passed: bool) -> None:
        """``bluegreen deploy`` of a gated release: healthy, checked, then a moment passes."""
        self.smoke_label(True)
        self.rollout(service, 1, "none")
        self.smoke_checks_answer(passed, False)
        self._advance(1.0)

    def rollout(self, service: str, replicas: int, checks: str) -> None:
        raise NotImplementedError

    def _advance(self, dt: float) -> None:
        raise NotImplementedError

    @rule(passed=st.sampled_from([True, True, False]), running=st.booleans())
    def smoke_checks_answer(self, passed: bool, running: bool) -> None:
        """The checks asked for answer: all pass, or one fails (or, ``running``, still retry)."""
        gates = self._gates()
        for service, ids in gates.asked.items():
            current = gates.results.get(service)
            if current is None or current.generation != ids or current.finished:
                continue
            if running:
                gates.results[service] = GateResult(ids, False, False, "GET /healthz 502")
                continue
            event(f"gate {'passed' if passed else 'failed'}")
            if passed and gates.hooked.get(service):
                gates.awaiting_hook[service] = ids  # the checks passed: the webhook's turn
                gates.results[service] = GateResult(ids, False, False)
                continue
            failure = None if passed else "GET /healthz answered 500: 'boom'"
            gates.results[service] = GateResult(ids, True, passed, failure)
            if passed:
                self._passed().update(ids)
        self._settle()

    @rule(answer=st.sampled_from(["204", "200", "403", "302", "timeout", "refused"]))
    def gate_webhook_answers(self, answer: str) -> None:
        """The gate webhook asked about a generation (its checks passed) answers: a 2xx
        approves; another status, a redirect, a timeout or a refused connection rejects."""
        gates = self._gates()
        for service, ids in list(gates.awaiting_hook.items()):
            current = gates.results.get(service)
            del gates.awaiting_hook[service]
            if current is None or current.generation != ids or current.finished:
                continue
            approved = answer.startswith("2")
            event(f"gate webhook {'approved' if approved else 'rejected'}")
            if approved:
                gates.results[service] = GateResult(ids, True, True)
                self._passed().update(ids)
            else:
                reason = f"http://127.0.0.1:9/… {answer}"
                gates.results[service] = GateResult(ids, True, False, reason, by="webhook")
        self._settle()

    @rule(on=st.booleans())
    def gate_webhook_label(self, on: bool) -> None:
        """The app's next deploys carry ``bluegreen.gate.url`` (or no longer do)."""
        self._gates()
        labels = {k: v for k, v in self.docker.extra_labels.items() if k not in GATE_LABELS}
        self.docker.extra_labels = {**labels, **GATE_LABELS} if on else labels
        self._settle()

    @rule(
        service=st.sampled_from(("shop", "blog")),
        passed=st.booleans(),
        webhook=st.booleans(),
        answer=st.sampled_from(["204", "403", "timeout"]),
    )
    def cli_smoke_rollout(self, service: str, passed: bool, webhook: bool, answer: str) -> None:
        """``bluegreen deploy --smoke``: only this deploy's containers carry the checks (the
        CLI's override; ``webhook``: and a gate URL), then the checks and the webhook answer."""
        before = dict(self.docker.extra_labels)
        self.docker.extra_labels = {**before, **SMOKE_LABELS, **(GATE_LABELS if webhook else {})}
        self.rollout(service, 1, "none")
        self.docker.extra_labels = before
        self.smoke_checks_answer(passed, False)
        self.gate_webhook_answers(answer)
        self._advance(1.0)

    @invariant()
    def no_automatic_switch_before_the_gates_passed(self) -> None:
        """The watcher's promotions of this step: each smoke-labelled container of the
        promoted generation was in a generation whose gates (checks, webhook) passed."""
        self._gates()
        before: dict[str, ServiceState] = getattr(self, "_gate_states", {})
        seen = getattr(self, "_gate_history", 0)
        self._gate_states = dict(self.controller.state.services)
        self._gate_history = len(self.history)
        new = self.history[seen:]
        for service, _before, to, reason, _actor, _at in new:
            old = before.get(service)
            if reason != "auto-promote" or old is None:
                continue
            if sum(1 for entry in new if entry[0] == service) > 1:
                event("gates: several switches of one service in one step (not checked)")
                continue
            mark = old.marks.get(to)
            after = max(generation_anchor(old), mark.since if mark else 0.0)
            promoted = [
                c
                for c in self.controller.containers.values()
                if c.labels.get("bluegreen.service") == service
                and c.labels.get("bluegreen.color") == str(to)
                and c.created > after
                and ("bluegreen.smoke" in c.labels or "bluegreen.gate.url" in c.labels)
            ]
            if promoted:
                event("gates: a gated generation was promoted")
            for c in promoted:
                assert c.id in self._passed(), (
                    f"{service}: the watcher promoted {to} with {c.name}, "
                    "whose gates (smoke checks, webhook) never passed"
                )
