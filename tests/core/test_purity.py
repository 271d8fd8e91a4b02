"""The one import-purity guard (house style 1: pure core, thin edges).

Nothing under ``provider/core/`` imports asyncio, aiohttp or aiodocker, nor
does anything it reaches; the core reaches no project module outside it (its
refusals are its own, ``provider/errors.py`` maps them to HTTP answers), and
its modules import one another without a cycle; the pure modules outside the core (the error
hierarchy, metrics, the OpenAPI document) and the CLI's pure modules
(snapshot, progress, the text renderer) keep to the same rule, the CLI's also
without subprocess or network libraries.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
IO_FRAMEWORKS = frozenset({"asyncio", "aiohttp", "aiodocker", "socket", "subprocess"})
#: What speaks or knows HTTP: none of it belongs in the core.
HTTP = frozenset({"aiohttp", "http", "urllib", "httpx", "requests", "multidict", "yarl"})
CLI_IO = IO_FRAMEWORKS | {"urllib"}

CORE = sorted(f"provider.core.{p.stem}" for p in (ROOT / "provider" / "core").glob("*.py"))
PURE = [
    *CORE,
    "provider.errors",
    "provider.metrics",
    "provider.openapi",
    "deploy.snapshot",
    "deploy.progress",
    "deploy.render_table",
]


def _imports(module: str) -> set[str]:
    path = ROOT / (module.replace(".", "/") + ".py")
    if not path.exists():
        path = ROOT / module.replace(".", "/") / "__init__.py"
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            if node.module in ("provider", "provider.core", "deploy"):
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _reached(module: str) -> tuple[set[str], set[str]]:
    """Every project module ``module`` reaches, and every top-level package they import."""
    seen: set[str] = set()
    top: set[str] = set()
    todo = [module]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        for name in _imports(current):
            top.add(name.split(".")[0])
            if name.startswith(("provider.", "deploy.")):
                todo.append(name)
    return seen, top


def test_the_core_is_a_package_of_its_own() -> None:
    """The modules that decide routing and switching all live under provider/core/."""
    expected = {
        "applied",
        "bake", "bake_json",
        "canary", "canary_analysis", "canary_json", "commands", "docker_normalize", "dynamic",
        "fallback",
        "gates",
        "labels",
        "maintenance", "model", "promotion", "refusals", "render", "routing", "rule_regex",
        "rule_syntax",
        "state_json", "state_versions",
        "status",
        "docker_endpoints",
        "swarm_normalize", "transitions", "wakes", "wire", "words", "__init__",
    }  # fmt: skip
    assert expected == {p.stem for p in (ROOT / "provider" / "core").glob("*.py")}


@pytest.mark.parametrize("module", PURE)
def test_pure_modules_import_no_io(module: str) -> None:
    """A pure module, and every project module it reaches, imports no I/O framework."""
    seen, top = _reached(module)
    banned = CLI_IO if module.startswith("deploy.") else IO_FRAMEWORKS
    assert set() == top & banned, sorted(seen)


@pytest.mark.parametrize("module", CORE)
def test_the_core_knows_no_http(module: str) -> None:
    """A core module reaches only core modules (never ``provider.errors``, whose
    classes carry HTTP statuses) and imports nothing that speaks HTTP."""
    seen, top = _reached(module)
    assert set() == {m for m in seen if m != "provider.core" and not m.startswith("provider.core.")}
    assert set() == top & HTTP, sorted(seen)


def test_core_modules_import_one_another_without_a_cycle() -> None:
    """The core's import graph (``TYPE_CHECKING`` imports included) has no cycle, e.g.
    the canary's dataclasses live with the model, which imports nothing of the canary."""
    graph = {m: {n for n in _imports(m) if n in CORE and n != m} for m in CORE}
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, " -> ".join((*path, module))
        if module in done:
            return
        for name in sorted(graph[module]):
            visit(name, (*path, module))
        done.add(module)

    for module in CORE:
        visit(module, ())
