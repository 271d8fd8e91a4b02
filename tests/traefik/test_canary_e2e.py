"""Canaries end to end: the real Docker Engine, the real Traefik 3.7.15 with its Prometheus
metrics, and the provider as a subprocess that reads them. Traffic only to 127.0.0.1."""

from __future__ import annotations

import time
from typing import Any

from tests.canary_stack import (
    canary,
    canary_status,
    flaky_backend,
    get_with_cookie,
    start_stack,
    wait_canary,
    wait_children,
    weighted_children,
)
from tests.testbed.containers import ContainerFactory
from tests.testbed.provider import ProviderFactory
from tests.testbed.stack import body_of
from tests.testbed.traefik import TraefikFactory


def ended(canary: dict[str, Any]) -> bool:
    """Promoted or aborted (a canary still ``waiting`` for its color has not begun)."""
    return canary.get("phase") in ("promoted", "aborted")


def test_failing_green_is_aborted_at_the_first_step(
    provider_factory: ProviderFactory, traefik_factory: TraefikFactory, containers: ContainerFactory
) -> None:
    """A green failing 30 % is aborted at step 1; only its share failed; blue then takes all.

    The canary is reserved before green starts (``await_ready``, as the CLI does), so the
    watcher's automatic promotion (on, 0.5 s) never takes green while it runs.
    """
    stack = start_stack(provider_factory, traefik_factory, containers)
    stack.backend("blue")
    stack.wait_serving("blue")
    waiting = canary(
        stack, color="green", steps=[20, 100], interval="2s", min_requests=40, await_ready=True
    )
    assert ("waiting", 0) == (waiting["phase"], waiting["weight"])
    flaky_backend(stack, "green", 30)
    with stack.load(concurrency=4, max_duration=60, max_requests=20_000) as load:
        done = wait_canary(stack, ended, "an end")
        wait_children(stack, [("web-blue", 1)])
        time.sleep(0.2)  # requests in flight when Traefik applied it
        after_abort = len(load.samples)
        time.sleep(1.0)
    result = load.stop()
    assert "aborted" == done["phase"]
    assert [(0, "breach")] == [(r["step"], r["verdict"]) for r in done["results"]]
    status = stack.provider.status("web")
    assert ("blue", "rejected") == (status["active"], status["marks"]["green"]["kind"])
    failed = [s for s in result.samples if s.status != 200]
    green = [s for s in result.samples if s.body == body_of("green")]
    assert {500} == {s.status for s in failed}
    assert len(failed) < len(green)  # 30 % of green's share, never blue's
    assert [] == [s for s in result.samples[after_abort:] if s.body != body_of("blue")]
    reasons = [h["reason"] for h in stack.provider.history("web")]
    assert ["canary-step", "canary-step", "canary-abort"] == reasons
    assert [("web-blue", 1)] == weighted_children(stack)


def test_good_green_is_promoted_through_every_step(
    provider_factory: ProviderFactory, traefik_factory: TraefikFactory, containers: ContainerFactory
) -> None:
    """A healthy green passes 10, 50 and becomes active at 100 with 0 failed requests."""
    stack = start_stack(provider_factory, traefik_factory, containers)
    stack.backend("blue")
    stack.wait_serving("blue")
    stack.backend("green", labels={"promote": "manual"})
    stack.provider.wait_routable("web", "green")  # Docker healthy is not yet seen
    canary(stack, color="green", steps=[10, 50, 100], interval="2s", min_requests=20)
    with stack.load(concurrency=4, max_duration=80, max_requests=50_000) as load:
        done = wait_canary(stack, ended, "an end")
        stack.wait_serving("green")
    result = load.stop()
    assert "promoted" == done["phase"], done
    assert [(0, 10), (1, 50)] == [(r["step"], r["weight"]) for r in done["results"]]
    assert all(r["figures"]["requests"] >= 20 for r in done["results"])
    assert [] == result.failures()
    assert {body_of("blue"), body_of("green")} == {s.body for s in result.samples}
    history = stack.provider.history("web")
    assert ["canary-step"] * 3 + ["canary"] == [h["reason"] for h in history]
    status = stack.provider.status("web")
    assert ("green", "blue") == (status["active"], status["previous"])


def test_weight_10_share_and_sticky_clients(
    provider_factory: ProviderFactory, traefik_factory: TraefikFactory, containers: ContainerFactory
) -> None:
    """At weight 10, 5,000 cookie-less requests give green 10 % ± 3; a cookie keeps a color."""
    stack = start_stack(provider_factory, traefik_factory, containers)
    stack.backend("blue")
    stack.wait_serving("blue")
    stack.backend("green", labels={"promote": "manual"})
    stack.provider.wait_routable("web", "green")  # Docker healthy is not yet seen
    canary(stack, color="green", steps=[10, 100], interval="600s")
    wait_children(stack, [("web-blue", 90), ("web-green", 10)])
    with stack.load(concurrency=8, max_duration=120, max_requests=5_000) as load:
        load.wait_requests(5_000, timeout=120)
    result = load.stop()
    assert [] == result.failures()
    share = sum(1 for s in result.samples if s.body == body_of("green")) / len(result.samples)
    print(f"green share over {len(result.samples)} cookie-less requests: {share:.2%}")
    assert 0.07 <= share <= 0.13
    colors_per_client: list[set[str]] = []
    for _ in range(30):
        status, first, set_cookie = get_with_cookie(stack, None)
        assert 200 == status and set_cookie is not None
        cookie = set_cookie.split(";")[0]
        seen = {first}
        for _ in range(20):
            seen.add(get_with_cookie(stack, cookie)[1])
        colors_per_client.append(seen)
    assert all(1 == len(seen) for seen in colors_per_client), colors_per_client
    assert "running" == canary_status(stack)["phase"]


def test_provider_sigkilled_mid_canary_resumes_and_finishes(
    provider_factory: ProviderFactory, traefik_factory: TraefikFactory, containers: ContainerFactory
) -> None:
    """SIGKILL at weight 50: Traefik keeps serving; the restart serves 50 again and finishes."""
    stack = start_stack(provider_factory, traefik_factory, containers)
    stack.backend("blue")
    stack.wait_serving("blue")
    stack.backend("green", labels={"promote": "manual"})
    stack.provider.wait_routable("web", "green")  # Docker healthy is not yet seen
    canary(stack, color="green", steps=[10, 50, 100], interval="3s", min_requests=10)
    with stack.load(concurrency=4, max_duration=90, max_requests=60_000) as load:
        wait_canary(stack, lambda c: c["weight"] == 50, "weight 50")
        stack.provider.kill()
        time.sleep(1.0)
        stack.provider.start()
        stack.provider.wait_ready()
        resumed = canary_status(stack)
        done = wait_canary(stack, ended, "an end")
        stack.wait_serving("green")
    result = load.stop()
    assert (1, 50, "running") == (resumed["step"], resumed["weight"], resumed["phase"])
    assert "promoted" == done["phase"], done
    assert [] == result.failures()
    assert "green" == stack.provider.active("web")


def test_green_dies_mid_canary_share_dropped_and_aborted(
    provider_factory: ProviderFactory, traefik_factory: TraefikFactory, containers: ContainerFactory
) -> None:
    """Killing green at weight 50 drops its child and aborts; then every request is blue."""
    stack = start_stack(provider_factory, traefik_factory, containers)
    stack.backend("blue")
    stack.wait_serving("blue")
    green = stack.backend("green", labels={"promote": "manual"})
    stack.provider.wait_routable("web", "green")  # Docker healthy is not yet seen
    canary(stack, color="green", steps=[50, 100], interval="600s")
    with stack.load(concurrency=4, max_duration=60, max_requests=50_000) as load:
        load.wait_body(body_of("green"), timeout=20)
        killed_at = len(load.samples)
        stack.containers.kill(green.id)
        done = wait_canary(stack, ended, "an end", timeout=30)
        wait_children(stack, [("web-blue", 1)])
        time.sleep(0.2)  # requests in flight when Traefik applied it
        applied = len(load.samples)
        time.sleep(1.0)
    result = load.stop()
    assert "aborted" == done["phase"]
    assert "not_ready" == done["results"][-1]["verdict"]
    lost = [s for s in result.samples[killed_at:applied] if not s.ok]
    print(f"requests lost between the kill and Traefik applying the drop: {len(lost)}")
    assert [] == [s for s in result.samples[applied:] if not s.ok]
    assert [] == [s for s in result.samples[:killed_at] if not s.ok]
    assert "rejected" == stack.provider.status("web")["marks"]["green"]["kind"]
