"""The CLI's pure core: reading ``/status``, following a rollout, rendering tables.

Table-driven, no I/O: snapshots are built from ``/status``-shaped dicts, and
the rollout driver runs against a fake provider and a fake compose with a
fake clock, so failure paths (timeout, unhealthy, Ctrl-C, a late promotion)
are pinned exactly.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from deploy.deploy_rollout import DeployPlan, deploy
from deploy.errors import (
    ComposeError,
    Interrupted,
    MissingToken,
    NothingToRollBack,
    ProviderProtocolError,
    ProviderUnreachable,
    RolloutFailed,
    SwitchRefusedError,
    TokenError,
    UnknownServiceError,
)
from deploy.progress import RolloutTracker, Verdict
from deploy.render_table import ago, history_text, status_all_text, table
from deploy.rollback import rollback
from deploy.rollout import Outcome, Reporter
from deploy.snapshot import parse_service, parse_status

NEW = "a" * 64
OLD = "b" * 64


def container(
    cid: str, state: str = "running", health: str = "healthy", **extra: Any
) -> dict[str, Any]:
    routable = state == "running" and health in ("healthy", "none")
    return {
        "id": cid[:12],
        "name": f"c-{cid[:4]}",
        "state": state,
        "health": health,
        "health_output": extra.pop("output", ""),
        "address": "http://127.0.0.1:1",
        "created": 1.0,
        "routable": routable,
        "problem": None,
        **extra,
    }


def status(
    active: str = "blue",
    green: Sequence[dict[str, Any]] = (),
    blue: Sequence[dict[str, Any]] | None = None,
    *,
    previous: str | None = None,
    pending: dict[str, Any] | None = None,
    promote: str = "auto",
    adopted: bool = True,
    last_switch: dict[str, Any] | None = None,
) -> dict[str, Any]:
    def color(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
        routable = sum(1 for c in items if c["routable"])
        return {
            "containers": list(items),
            "routable": routable,
            "replicas": 1,
            "ready": routable >= 1,
            "rule": "Host(`web`)",
            "promote": promote,
        }

    return {
        "service": "web",
        "active": active,
        "previous": previous,
        "adopted": adopted,
        "colors": {
            "blue": color([container(OLD)] if blue is None else blue),
            "green": color(green),
        },
        "last_switch": last_switch,
        "pending_promotion": pending,
        "pending_rollback": None,
        "errors": [],
        "serving_last_good_config": False,
        "docker_connected": True,
    }


# -- tracker ---------------------------------------------------------------------

W, R, F, S = Verdict.WAITING, Verdict.READY, Verdict.FAILED, Verdict.SWITCHED
G = "green  c-aaaa  "
TRACKER_CASES = [
    ("not seen yet", status(), W, ["waiting for the provider to see the 1 new green container(s)"]),
    ("created", status(green=[container(NEW, "created", "starting")]), W, [G + "created"]),
    ("starting", status(green=[container(NEW, health="starting")]), W, [G + "starting"]),
    ("healthy", status(green=[container(NEW)]), R, [G + "healthy"]),
    ("no healthcheck", status(green=[container(NEW, health="none")]), R, [G + "running"]),
    ("unhealthy", status(green=[container(NEW, health="unhealthy")]), F, [G + "unhealthy"]),
    ("exited", status(green=[container(NEW, "exited", "none")]), F, [G + "exited"]),
    ("switched", status("green", green=[container(NEW)]), S, [G + "healthy"]),
    (
        "active but the new container still starting",
        status("green", green=[container(NEW, health="starting")]),
        W,
        [G + "starting"],
    ),
    (
        "other containers of the color are ignored",
        status(green=[container(NEW, health="starting"), container("c" * 64, health="unhealthy")]),
        W,
        [G + "starting"],
    ),
]


@pytest.mark.parametrize(
    ("doc", "verdict", "lines"),
    [case[1:] for case in TRACKER_CASES],
    ids=[case[0] for case in TRACKER_CASES],
)
def test_tracker_verdicts(doc: dict[str, Any], verdict: Verdict, lines: list[str]) -> None:
    """One snapshot of the watched container gives this verdict and these progress lines."""
    step = RolloutTracker("green", [NEW]).observe(parse_service(doc))
    assert (verdict, lines) == (step.verdict, list(step.lines))


def test_tracker_reports_only_changes() -> None:
    """Progress lines appear once per phase change: created → starting → healthy."""
    tracker = RolloutTracker("green", [NEW])
    seen = []
    for phase in ("starting", "starting", "healthy", "healthy"):
        seen += tracker.observe(parse_service(status(green=[container(NEW, health=phase)]))).lines
    assert ["green  c-aaaa  starting", "green  c-aaaa  starting → healthy"] == seen


@pytest.mark.parametrize(
    ("pending", "promote", "operator"),
    [
        ({"color": "green", "stage": "holding", "waiting_for": "holding"}, "auto", False),
        ({"color": "green", "stage": "manual", "waiting_for": "manual"}, "manual", True),
        ({"color": "green", "stage": "disabled", "waiting_for": "off"}, "auto", True),
        (None, "manual", True),
    ],
)
def test_ready_says_whether_the_operator_must_switch(
    pending: dict[str, Any] | None, promote: str, operator: bool
) -> None:
    """promote=manual or auto-promote off: the CLI must switch; holding: the provider will."""
    doc = status(green=[container(NEW)], pending=pending, promote=promote)
    step = RolloutTracker("green", [NEW]).observe(parse_service(doc))
    assert (Verdict.READY, operator) == (step.verdict, step.needs_operator_switch)


def test_restarted_containers_seen_exited_are_stale_until_they_ran() -> None:
    """rollback starts stopped containers: "exited" fails only after they were seen running."""
    tracker = RolloutTracker("blue", [OLD], restarting=True)
    verdicts = [
        tracker.observe(parse_service(status("green", blue=[container(OLD, state, health)])))
        for state, health in (("exited", "none"), ("running", "starting"), ("exited", "none"))
    ]
    assert [Verdict.WAITING, Verdict.WAITING, Verdict.FAILED] == [v.verdict for v in verdicts]


def test_first_deploy_counts_as_switched_only_once_adopted() -> None:
    """Before adoption the provider reports active=blue by default; that is not a switch."""
    tracker = RolloutTracker("blue", [OLD])
    before = tracker.observe(parse_service(status(adopted=False, blue=[container(OLD)])))
    after = tracker.observe(parse_service(status(adopted=True, blue=[container(OLD)])))
    assert (Verdict.READY, Verdict.SWITCHED) == (before.verdict, after.verdict)


def test_first_deploy_waits_for_the_new_containers_even_if_adopted() -> None:
    """Adopted thanks to an older blue container: not done until the new one is routable."""
    tracker = RolloutTracker("blue", exclude=[OLD])
    doc = status(blue=[container(OLD), container(NEW, health="starting")])
    step = tracker.observe(parse_service(doc))
    assert Verdict.WAITING == step.verdict


def test_snapshot_refuses_a_document_without_active() -> None:
    """A provider answering another shape fails at the edge with a clear message."""
    doc = status()
    del doc["active"]
    with pytest.raises(ProviderProtocolError, match="lacks 'active'"):
        parse_service(doc)


# -- the deploy driver against fakes -----------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class FakeProvider:
    """Answers ``status`` from a script of documents (the last one repeats)."""

    token: str | None = "operator-token"
    #: What ``GET /auth`` raises (a rejected token), if anything.
    auth_error: Exception | None = None

    def __init__(self, docs: Sequence[dict[str, Any] | Exception]) -> None:
        self.docs = list(docs)
        self.token_checks = 0
        self.switches: list[tuple[str, str | None]] = []
        self.rollbacks: list[str] = []
        self.retires: list[str] = []
        self.rollback_colors: list[str | None] = []

    def status(self, service: str | None = None) -> dict[str, Any]:
        doc = self.docs.pop(0) if len(self.docs) > 1 else self.docs[0]
        if isinstance(doc, Exception):
            raise doc
        return doc

    def check_token(self) -> None:
        self.token_checks += 1
        if self.auth_error is not None:
            raise self.auth_error

    def switch(self, service: str, color: str | None = None, **_: Any) -> dict[str, Any]:
        self.switches.append((service, color))
        return {"service": service, "active": color, "changed": True}

    def rollback(self, service: str, **options: Any) -> dict[str, Any]:
        self.rollbacks.append(service)
        self.rollback_colors.append(options.get("color"))
        return {"service": service, "active": "blue", "changed": True}

    def retire(self, service: str, color: str) -> dict[str, Any]:
        """As the provider: 409 for the active color, else the color is marked."""
        current = self.docs[0]
        if isinstance(current, Exception):
            raise current
        if current["active"] == color and current["adopted"]:
            raise SwitchRefusedError("refused", status=409, code="retire_refused", detail="")
        self.retires.append(color)
        return {"service": service, "color": color, "active": current["active"], "marks": {}}


class FakeCompose:
    noun = "compose"

    def __init__(self, ids: Sequence[str] = (NEW,), interrupt_on: str | None = None) -> None:
        self.calls: list[tuple[str, str]] = []
        self.ids = list(ids)
        self.interrupt_on = interrupt_on
        #: The labels each ``up`` gave its service (``deploy --smoke``).
        self.labels: dict[str, dict[str, str]] = {}
        #: The containers each ``stop`` named (the provider's, for ``docker stop``).
        self.stopped: dict[str, list[str]] = {}

    def describe(self) -> str:
        return "docker-compose -p app"

    def hint(self, verb: str, name: str) -> str:
        return f"{self.describe()} {verb} {name}"

    def require_services(self, *names: str) -> None:
        self.calls.append(("require", ",".join(names)))

    def check_image(self, service: str, image: str) -> None:
        pass

    def _call(self, name: str, service: str) -> None:
        self.calls.append((name, service))
        if self.interrupt_on == name:
            self.interrupt_on = None
            raise KeyboardInterrupt

    def up(self, service: str, image: str | None, labels: Mapping[str, str] | None = None) -> None:
        self.labels[service] = dict(labels or {})
        self._call("up", service)

    def stop(self, service: str, containers: Sequence[str] = ()) -> None:
        self.stopped[service] = list(containers)
        self._call("stop", service)

    def start(self, service: str) -> None:
        self._call("start", service)


def run_deploy(
    provider: FakeProvider, compose: FakeCompose, **plan: Any
) -> tuple[Any, str, FakeClock]:
    clock = FakeClock()
    out = io.StringIO()
    plan.setdefault("drain_timeout", 2.0)
    plan.setdefault("timeout", 30.0)
    result = deploy(
        provider,
        lambda: compose,
        DeployPlan("web", image="app:2", **plan),
        Reporter(out, clock),
        clock=clock,
        sleep=clock.sleep,
    )
    return result, out.getvalue(), clock


def test_deploy_success_drains_then_stops_the_old_color() -> None:
    """up green → promoted by the watcher → drain → stop blue; summary has from → to."""
    switch = {"reason": "auto-promote", "actor": "watcher"}
    provider = FakeProvider(
        [
            status(),
            status(green=[container(NEW, health="starting")]),
            status("green", green=[container(NEW)], previous="blue", last_switch=switch),
        ]
    )
    compose = FakeCompose()
    outcome, text, _clock = run_deploy(provider, compose)
    assert [("up", "web-green"), ("stop", "web-blue")] == compose.calls
    assert {"web-blue": [OLD[:12]]} == compose.stopped  # the provider's ids: `docker stop`
    assert ("blue", "green", True, "auto-promote by watcher") == (
        outcome.from_color,
        outcome.to_color,
        outcome.old_stopped,
        outcome.switched_by,
    )
    assert "draining blue (web-blue): until no connection is open to it, at most 2s" in text
    assert outcome.summary().startswith("deployed web: blue → green, image app:2, in ")


def test_deploy_keep_old_never_stops() -> None:
    """--keep-old: no stop call at all."""
    provider = FakeProvider([status(), status("green", green=[container(NEW)], previous="blue")])
    compose = FakeCompose()
    outcome, _text, _clock = run_deploy(provider, compose, keep_old=True)
    assert ["up"] == [c[0] for c in compose.calls]
    assert outcome.summary().endswith("(blue still running)")


def test_deploy_timeout_stops_the_new_color_and_names_the_stuck_container() -> None:
    """Never healthy within --timeout: exit 1 path, new color stopped, active untouched."""
    starting = status(green=[container(NEW, health="starting", output="connection refused")])
    provider = FakeProvider([status(), starting])
    compose = FakeCompose()
    with pytest.raises(RolloutFailed) as raised:
        run_deploy(provider, compose, timeout=5.0)
    assert ("stop", "web-green") == compose.calls[-1]
    message = raised.value.message
    assert "green was not promoted within 5s" in message
    assert "last healthcheck: connection refused" in message
    assert "blue keeps serving; the new green containers were stopped." in message
    assert "(or raise --timeout)" in message


def test_deploy_unhealthy_fails_at_once() -> None:
    """An unhealthy new container fails the deploy without waiting for the timeout."""
    bad = status(green=[container(NEW, health="unhealthy", output="wget: 404")])
    provider = FakeProvider([status(), bad])
    compose = FakeCompose()
    with pytest.raises(RolloutFailed, match="c-aaaa is unhealthy"):
        run_deploy(provider, compose, timeout=100.0)
    assert ("stop", "web-green") == compose.calls[-1]


def test_deploy_failure_leaves_a_color_the_provider_promoted_meanwhile() -> None:
    """If the provider made green active just as we gave up, green is not stopped."""
    starting = status(green=[container(NEW, health="starting")])
    promoted = status("green", green=[container(NEW)], previous="blue")
    clock = FakeClock()

    class LateProvider(FakeProvider):
        """Promotes green right after the deploy's last poll (the cleanup's re-check sees it)."""

        late_calls = 0

        def status(self, service: str | None = None) -> dict[str, Any]:
            if clock.now == 0.0:
                return status()
            if clock.now >= 5.0:
                self.late_calls += 1
                return promoted if self.late_calls > 1 else starting
            return starting

        def retire(self, service: str, color: str) -> dict[str, Any]:
            # Green was promoted before the retire arrived: the provider answers 409.
            raise SwitchRefusedError("active", status=409, code="retire_refused", detail="")

    compose = FakeCompose()
    with pytest.raises(RolloutFailed, match="made green active meanwhile"):
        deploy(
            LateProvider([]),
            lambda: compose,
            DeployPlan("web", image="app:2", timeout=5.0),
            Reporter(io.StringIO(), clock),
            clock=clock,
            sleep=clock.sleep,
        )
    assert "stop" not in [c[0] for c in compose.calls]


def test_ctrl_c_during_compose_up_stops_the_new_color() -> None:
    """Ctrl-C mid-deploy: Interrupted (exit 130), new color stopped, blue untouched."""
    provider = FakeProvider([status()])
    compose = FakeCompose(interrupt_on="up")
    with pytest.raises(Interrupted, match="blue keeps serving web"):
        run_deploy(provider, compose)
    assert [("up", "web-green"), ("stop", "web-green")] == compose.calls


def test_manual_promotion_is_switched_through_the_api() -> None:
    """promote=manual: once green is ready, the CLI calls /switch itself."""
    ready = status(green=[container(NEW)], promote="manual")
    switched = status("green", green=[container(NEW)], previous="blue", promote="manual")
    provider = FakeProvider([status(promote="manual"), ready, switched])
    outcome, text, _clock = run_deploy(provider, FakeCompose())
    assert [("web", "green")] == provider.switches
    assert "green is ready; switching through the API" in text
    assert "green" == outcome.to_color


def test_a_holding_promotion_is_left_to_the_provider() -> None:
    """Ready with the provider holding (promote_after): the CLI never switches by itself."""
    holding = {"color": "green", "stage": "holding", "waiting_for": "holding for 30s"}
    ready = status(green=[container(NEW)], pending=holding)
    provider = FakeProvider([status(), ready])
    with pytest.raises(RolloutFailed, match="green was not promoted within 20s"):
        run_deploy(provider, FakeCompose(), timeout=20.0)
    assert [] == provider.switches


def test_a_silent_provider_gets_an_api_switch() -> None:
    """Ready and no pending promotion reported for 5 s: the CLI switches through the API."""
    ready = status(green=[container(NEW)])
    provider = FakeProvider([status(), ready])
    with pytest.raises(RolloutFailed):
        run_deploy(provider, FakeCompose(), timeout=10.0)
    assert [("web", "green")] == provider.switches


def test_manual_service_without_token_fails_before_deploying() -> None:
    """promote=manual and no BLUEGREEN_TOKEN: refused up front (exit 4), compose untouched."""
    provider = FakeProvider([status(promote="manual")])
    provider.token = None
    compose = FakeCompose()
    with pytest.raises(MissingToken, match="promote=manual"):
        run_deploy(provider, compose)
    assert [] == compose.calls


REJECTED = TokenError("the provider rejected the token", status=401, code="x", detail="")


def test_a_rejected_token_fails_the_deploy_before_compose_runs() -> None:
    """A token the provider rejects (GET /auth 401) stops the deploy before compose runs."""
    provider = FakeProvider([status()])
    provider.auth_error = REJECTED
    compose = FakeCompose()
    with pytest.raises(TokenError, match="rejected the token; nothing was deployed"):
        run_deploy(provider, compose)
    assert ([], 1) == (compose.calls, provider.token_checks)


def test_rollback_with_a_rejected_token_starts_nothing() -> None:
    """A wrong token fails the rollback before the stopped old color is started (issue 15)."""
    stopped = status("green", green=[container(NEW)], blue=[container(OLD, "exited", "none")])
    stopped["previous"] = "blue"
    provider = FakeProvider([stopped])
    provider.auth_error = REJECTED
    compose = FakeCompose(ids=[OLD])
    clock = FakeClock()
    with pytest.raises(TokenError, match="rejected the token; nothing was changed"):
        rollback(
            provider,  # type: ignore[arg-type]
            lambda: compose,  # type: ignore[arg-type,return-value]
            "web",
            Reporter(io.StringIO(), clock),
            clock=clock,
            sleep=clock.sleep,
        )
    assert ([], []) == (compose.calls, provider.rollbacks)


def test_provider_lost_mid_deploy_fails_after_the_grace() -> None:
    """The provider unreachable for longer than the grace: failure; the new color is left
    running, because the provider could not be told to retire it (it might be serving)."""
    gone = ProviderUnreachable("http://127.0.0.1:1", "connection refused")
    provider = FakeProvider([status(), status(green=[container(NEW, health="starting")]), gone])
    compose = FakeCompose()
    with pytest.raises(RolloutFailed, match="cannot reach the provider") as failed:
        run_deploy(provider, compose, timeout=100.0)
    assert [("up", "web-green")] == compose.calls
    assert "the new green containers were left running" in str(failed.value)


def test_first_deploy_targets_blue_and_stops_nothing() -> None:
    """Unknown service: blue is deployed and adopted; no old color to drain."""
    unknown = UnknownServiceError("unknown", status=404, code="unknown_service", detail="")
    adopted = status(blue=[container(NEW)])
    provider = FakeProvider([unknown, unknown, adopted])
    compose = FakeCompose()
    outcome, _text, _clock = run_deploy(provider, compose)
    assert [("up", "web-blue")] == compose.calls
    assert (None, "blue", False) == (outcome.from_color, outcome.to_color, outcome.old_stopped)


def test_deploy_waits_only_for_containers_compose_created() -> None:
    """Containers of the target color that existed before `up` are not the new ones."""
    old_green = container(OLD, "exited", "none")
    provider = FakeProvider(
        [
            status(green=[old_green]),
            status(green=[old_green]),
            status(green=[old_green, container(NEW, health="starting")]),
            status("green", green=[container(NEW)], previous="blue"),
        ]
    )
    outcome, text, _clock = run_deploy(provider, FakeCompose())
    assert "waiting for the provider to see the new green container(s)" in text
    assert "green  c-aaaa  starting" in text
    assert "c-bbbb" not in text
    assert "green" == outcome.to_color


def test_timeout_without_any_new_container_points_at_the_labels() -> None:
    """The provider never saw a new container: the message says to check the labels."""
    provider = FakeProvider([status()])
    with pytest.raises(RolloutFailed, match="the provider saw no new green container within 3s"):
        run_deploy(provider, FakeCompose(), timeout=3.0)


def test_compose_failure_is_reported_and_cleaned_up() -> None:
    """A failing `compose up` becomes a deploy failure with compose's message."""

    class Failing(FakeCompose):
        def up(
            self, service: str, image: str | None, labels: Mapping[str, str] | None = None
        ) -> None:
            self.calls.append(("up", service))
            raise ComposeError("`docker-compose up` exited 1: pull access denied")

    provider = FakeProvider([status()])
    compose = Failing()
    with pytest.raises(RolloutFailed, match="pull access denied"):
        run_deploy(provider, compose)
    assert ("stop", "web-green") == compose.calls[-1]


def test_rollback_starts_stopped_containers_then_switches() -> None:
    """Previous color stopped: compose start, wait until routable, then POST /rollback."""
    stopped = status("green", green=[container(NEW)], blue=[container(OLD, "exited", "none")])
    stopped["previous"] = "blue"
    back = status("green", green=[container(NEW)], blue=[container(OLD)], previous="blue")
    provider = FakeProvider([stopped, stopped, stopped, back])
    compose = FakeCompose(ids=[OLD])
    clock = FakeClock()
    out = io.StringIO()
    outcome = rollback(
        provider,
        lambda: compose,
        "web",
        Reporter(out, clock),
        clock=clock,
        sleep=clock.sleep,
    )
    assert [("start", "web-blue")] == compose.calls
    assert ["web"] == provider.rollbacks
    assert ["blue"] == provider.rollback_colors
    assert ("green", "blue") == (outcome.from_color, outcome.to_color)
    assert "blue  c-bbbb  exited → healthy" in out.getvalue()


def test_summary_rollback_hint_repeats_the_compose_flags() -> None:
    """The success line's rollback hint carries the -f/-p the deploy was given (quoted)."""
    outcome = Outcome(
        "deployed",
        "web",
        "blue",
        "green",
        20.06,
        image="app:2",
        old_stopped=True,
        compose_args=("-f", "my app/compose.yml", "-p", "shop"),
    )

    assert (
        "deployed web: blue → green, image app:2, in 20.1s (blue stopped; "
        "`bluegreen rollback web -f 'my app/compose.yml' -p shop` restarts it)"
    ) == outcome.summary()


def test_rollback_refuses_containers_of_a_failed_deploy() -> None:
    """Previous-color containers created after the last switch never served: refuse (exit 6)."""
    failed = container(NEW, "exited", "none")
    pending = {"color": "green", "stage": "not_routable", "containers": [failed]}
    doc = status("blue", blue=[container(OLD)], green=[failed], previous="green", pending=pending)
    provider = FakeProvider([doc])
    clock = FakeClock()
    with pytest.raises(NothingToRollBack, match="created after the last switch"):
        rollback(
            provider,
            lambda: FakeCompose(),
            "web",
            Reporter(io.StringIO(), clock),
            clock=clock,
            sleep=clock.sleep,
        )
    assert [] == provider.rollbacks


# -- tables ------------------------------------------------------------------------


def test_table_pads_columns_without_trailing_blanks() -> None:
    """Columns line up; the last column is not padded."""
    assert "A    BB\nccc  d" == table(["A", "BB"], [["ccc", "d"]])


@pytest.mark.parametrize(
    ("seconds", "text"), [(5, "5s ago"), (61, "1m ago"), (7200, "2h ago"), (90000, "1d ago")]
)
def test_ago(seconds: int, text: str) -> None:
    """Ages are rounded down to the largest unit."""
    assert text == ago(1000.0, 1000.0 + seconds)


def test_status_all_text_with_a_pending_promotion() -> None:
    """The summary notes a pending promotion and counts stopped containers."""
    svc = status(
        green=[container(NEW, "exited", "none")],
        pending={"color": "green", "stage": "not_routable", "waiting_for": "x"},
    )
    doc = {"services": {"web": svc}, "docker": {"status": "connected"}}
    text = status_all_text(parse_status(doc), 0.0)
    assert "0/1 routable, 1 stopped" in text
    assert "promotion of green: waiting for the new containers to be healthy" in text


def test_history_text_empty() -> None:
    """No records: one explicit line, not an empty table."""
    assert "no switches recorded" == history_text([])


class Recorded(FakeProvider):
    """Records retires into the compose call log, to pin their order against ``stop``."""

    compose: FakeCompose

    def retire(self, service: str, color: str) -> dict[str, Any]:
        answer = super().retire(service, color)
        self.compose.calls.append(("retire", color))
        return answer


def test_a_failed_deploy_retires_the_new_color_before_stopping_it() -> None:
    """Issue 9 defect 6: the failure path tells the provider (POST /retire) before
    `compose stop`, so promote_after cannot promote the containers during the stop."""
    provider = Recorded([status(), status(green=[container(NEW, health="unhealthy")])])
    compose = provider.compose = FakeCompose()
    with pytest.raises(RolloutFailed):
        run_deploy(provider, compose)
    assert [("up", "web-green"), ("retire", "green"), ("stop", "web-green")] == compose.calls


def test_the_drain_retires_the_old_color_before_stopping_it() -> None:
    """Success path: retire blue, then stop it."""
    switch = {"reason": "auto-promote", "actor": "watcher"}
    promoted = status("green", green=[container(NEW)], previous="blue", last_switch=switch)
    provider = Recorded([status(), promoted])
    compose = provider.compose = FakeCompose()
    run_deploy(provider, compose)
    assert [("up", "web-green"), ("retire", "blue"), ("stop", "web-blue")] == compose.calls


def test_an_auto_rollback_during_the_drain_stops_nothing_and_fails() -> None:
    """Blue became active again during the drain (the provider answers 409 to the retire):
    blue is not stopped and the deploy exits non-zero, saying so."""
    switch = {"reason": "auto-promote", "actor": "watcher"}
    promoted = status("green", green=[container(NEW)], previous="blue", last_switch=switch)
    rolled_back = status("blue", green=[container(NEW)], previous="green")
    provider = Recorded([status(), promoted, rolled_back])
    compose = provider.compose = FakeCompose()
    with pytest.raises(RolloutFailed, match="made blue active meanwhile, so blue was not stopped"):
        run_deploy(provider, compose)
    assert [("up", "web-green")] == compose.calls


def test_an_operator_switch_after_the_retire_still_stops_nothing() -> None:
    """The retire succeeded but an operator switched to blue before the stop: the re-check
    of the active color refuses to stop it."""
    switch = {"reason": "auto-promote", "actor": "watcher"}
    promoted = status("green", green=[container(NEW)], previous="blue", last_switch=switch)
    switched_back = status("blue", green=[container(NEW)], previous="green")

    class OperatorMeanwhile(Recorded):
        def retire(self, service: str, color: str) -> dict[str, Any]:
            answer = super().retire(service, color)
            self.docs = [switched_back]
            return answer

    provider = OperatorMeanwhile([status(), promoted])
    compose = provider.compose = FakeCompose()
    with pytest.raises(RolloutFailed, match="blue was not stopped"):
        run_deploy(provider, compose)
    assert [("up", "web-green"), ("retire", "blue")] == compose.calls


def test_without_a_token_a_stop_overtaken_by_a_switch_is_reported() -> None:
    """No token: the retire is refused (401), the CLI warns, checks, stops, and if the
    provider switched to the stopped color meanwhile it exits non-zero saying so."""
    no_token = TokenError("no token", status=401, code="unauthorized", detail="")
    starting = status(green=[container(NEW, health="unhealthy")])
    promoted = status("green", green=[container(NEW)], previous="blue")

    class Tokenless(FakeProvider):
        token = None

        def retire(self, service: str, color: str) -> dict[str, Any]:
            raise no_token

    provider = Tokenless([status(), starting, starting, promoted])
    compose = FakeCompose()
    with pytest.raises(RolloutFailed, match="switched web to green while its containers"):
        run_deploy(provider, compose)
    assert ("stop", "web-green") == compose.calls[-1]
