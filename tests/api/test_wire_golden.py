"""The documents the CLI and users' scripts read keep their bytes across the typing.

``tests/data/state/status-cb4bf50.jsonl`` holds what the code at cb4bf50 answered
(``/status`` and ``/history`` bodies, as ``web.json_response`` dumps them: key order
included) for the golden state file and six containers, once per analysis mode. Built
the same way here, through the typed documents of ``provider/core/wire.py``, the bodies
must be the same bytes, once the keys added since by new features (:data:`ADDED`) are set
aside: additions are allowed, a change of what was there is not.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from provider import store
from provider.controller import Controller
from provider.core.model import Color, Container, Health
from provider.settings import Settings

DATA = Path(__file__).resolve().parents[1] / "data" / "state"

#: Keys of ``/status`` added after cb4bf50, by where they sit (each with the feature's page).
ADDED: dict[str, frozenset[str]] = {
    "top": frozenset({"traefik", "traefik_pollers"}),  # security.md, applied-and-drain.md
    "service": frozenset({"traefik", "maintenance", "bake"}),  # applied-and-drain, safe-releases
    "color": frozenset({"image"}),  # docs/http-api.md: which version each color runs
    "container": frozenset({"image", "image_id"}),
}


def _without(doc: dict[str, Any], where: str) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in ADDED[where]}


def _as_before(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` without the keys :data:`ADDED` names (the rest in its order)."""
    out = _without(doc, "top")
    out["services"] = {name: _without(svc, "service") for name, svc in out["services"].items()}
    for svc in out["services"].values():
        for color, view in svc["colors"].items():
            view = svc["colors"][color] = _without(view, "color")
            view["containers"] = [_without(c, "container") for c in view["containers"]]
    return out


def _containers() -> list[Container]:
    """Both colors of three services (two of them in the state file), one replica starting."""
    out, n = [], 0
    for svc in ("web", "api", "new"):
        for color in Color:
            for r in range(2):
                n += 1
                labels = {
                    "bluegreen.service": svc,
                    "bluegreen.color": str(color),
                    "bluegreen.port": str(8000 + n),
                    "bluegreen.rule": f"Host(`{svc}.x`)",
                    "bluegreen.replicas": "2",
                }
                out.append(
                    Container(
                        id=f"{n:064x}",
                        name=f"{svc}-{color}-{r}",
                        state="running",
                        health=Health.HEALTHY if r == 0 else Health.STARTING,
                        labels=labels,
                        created=1700000500.0 + n,
                        network_mode="host",
                        health_output="ok\n",
                        image="img:1",
                    )
                )
    return out


async def test_status_and_history_bodies_are_the_bytes_cb4bf50_answered(tmp_path: Path) -> None:
    """Every key, value and key order of /status (canaries, marks, records with figures,
    containers) and /history is what the untyped code answered."""
    shutil.copy(DATA / "full.json", tmp_path / "state.json")
    state = store.load(tmp_path / "state.json")
    lines = []
    for metrics in (None, "http://127.0.0.1:9/metrics"):
        settings = Settings(state_file=tmp_path / "state.json", traefik_metrics_url=metrics)
        controller = Controller(settings, state)
        await controller.replace_containers(_containers())
        await controller.mark_synced()
        controller.plan_canary_decision("web", 1700000999.5)
        doc = controller.status_all()
        doc["state_file"]["location"] = "X"
        lines += [json.dumps(_as_before(dict(doc))), json.dumps(controller.history())]
        lines.append(json.dumps(controller.history("api")))
    expected = (DATA / "status-cb4bf50.jsonl").read_text(encoding="utf-8").splitlines()
    assert expected == lines
