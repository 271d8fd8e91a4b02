"""The render's time on this tree next to older commits', measured in one run.

    python3 -m bench.render_compare [--old b16c8ab] [--old cb4bf50] [--services 500]
                                    [--rounds 7] [--repeat 20]

The performance guard of a refactor: group + render + serialize of the same
synthetic fleet as ``bench/render.py`` (500 services x 2 colors x 2 replicas =
2,000 containers), timed on this working tree and on each ``--old`` commit
(checked out into a temporary ``git worktree``, removed afterwards). Every tree
runs in its own child process with only that tree on ``PYTHONPATH``, the same
timing code (:data:`CHILD`) for all; rounds are interleaved (A B, B A, ...) so
the machine's drift hits every tree alike. Each round prints each tree's median
CPU time (``process_time``: on a shared machine other processes stretch the wall
time far more than the CPU time) of ``--repeat`` renders; the end prints the
median of those medians, the ratio to each old commit, and whether every tree
served the same bytes (the body's SHA-256). No assertion: the figures are for
the reader (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: Run in the child with one tree on ``sys.path``: only APIs every compared commit has.
CHILD = """
import hashlib, json, statistics, sys, time
from provider.core.model import Color, Container, Health
from provider.core.render import render, serialize
from provider.core.routing import observe
from provider.settings import Settings

services, repeat = int(sys.argv[1]), int(sys.argv[2])
containers, n = [], 0
for s in range(services):
    for color in Color:
        for r in range(2):
            n += 1
            labels = {
                "bluegreen.service": f"svc{s}", "bluegreen.color": str(color),
                "bluegreen.port": str(10000 + n % 50000),
                "bluegreen.rule": f"Host(`svc{s}.example.com`)", "bluegreen.replicas": "2",
            }
            containers.append(Container(
                id=f"{n:064x}", name=f"svc{s}-{color}-{r}", state="running",
                health=Health.HEALTHY, labels=labels, created=float(n), network_mode="host",
            ))
options = Settings().options
cpu, wall, body = [], [], b""
for _ in range(repeat):
    c0, t0 = time.process_time(), time.perf_counter()
    views = observe(containers, options).services
    body = serialize(render(views, {name: Color.BLUE for name in views}, options))
    cpu.append(time.process_time() - c0)
    wall.append(time.perf_counter() - t0)
print(json.dumps({"cpu": statistics.median(cpu), "wall": statistics.median(wall),
                  "sha256": hashlib.sha256(body).hexdigest(), "size": len(body)}))
"""


def _time(tree: Path, services: int, repeat: int) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(services), str(repeat)],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    result: dict[str, object] = json.loads(out.stdout.splitlines()[-1])
    return result


def _add_worktree(rev: str, parent: Path) -> Path:
    path = parent / rev
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet", str(path), rev],
        check=True,
    )
    return path


def _remove_worktree(path: Path) -> None:
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)], check=False
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", action="append", help="a commit to compare (repeatable)")
    parser.add_argument("--services", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    olds: list[str] = args.old or ["b16c8ab"]
    with tempfile.TemporaryDirectory(prefix="bench-render-") as tmp:
        trees = {"this tree": ROOT}
        try:
            for rev in olds:
                trees[rev] = _add_worktree(rev, Path(tmp))
            _compare(trees, args.services, args.rounds, args.repeat)
        finally:
            for rev in olds:
                if rev in trees:
                    _remove_worktree(trees[rev])


def _compare(trees: dict[str, Path], services: int, rounds: int, repeat: int) -> None:
    medians: dict[str, list[float]] = {name: [] for name in trees}
    walls: dict[str, list[float]] = {name: [] for name in trees}
    digests: dict[str, set[str]] = {name: set() for name in trees}
    names = list(trees)
    for round_ in range(rounds):
        order = names if round_ % 2 == 0 else names[::-1]
        line = []
        for name in order:
            result = _time(trees[name], services, repeat)
            medians[name].append(float(str(result["cpu"])))
            walls[name].append(float(str(result["wall"])))
            digests[name].add(str(result["sha256"]))
            line.append(f"{name} {medians[name][-1] * 1000:.1f} ms")
        print(f"round {round_ + 1}: " + ", ".join(line), flush=True)
    containers = services * 4
    print(f"\n{containers} containers, median of {rounds} rounds x median of {repeat} renders")
    print("(CPU time of the child: the machine's other load hits wall time far more):")
    mine = statistics.median(medians["this tree"])
    for name in names:
        figure = statistics.median(medians[name])
        wall = statistics.median(walls[name]) * 1000
        ratio = "" if name == "this tree" else f"  this tree / {name}: {mine / figure:.3f}"
        print(f"  {name:>10}: {figure * 1000:7.1f} ms CPU ({wall:.1f} ms wall){ratio}")
    same = len(set().union(*digests.values())) == 1
    print(f"same body bytes on every tree: {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
