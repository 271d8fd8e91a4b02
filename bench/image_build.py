"""The provider image's build on the vfs storage driver: an older Dockerfile beside this one.

    python3 -m bench.image_build [--old c611f7f] [--rounds 1]

Offline hosts build ``deploy/Dockerfile`` with the legacy builder (``DOCKER_BUILDKIT=0``)
FROM a base made by ``docker import``; the test suite does the same in its private
``dockerd`` on vfs, where every instruction's container is a full copy of the root file
system. This builds, in one private daemon and interleaved rounds (old, new; new, old),
the Dockerfile of ``--old`` and this tree's, each FROM the debootstrap base as the suite
makes it now (apt lists, docs and translations removed) and, for the old Dockerfile, also
FROM the full debootstrap root the suite used before. Each build starts with no build
cache (the images of the previous build removed). Prints each build's wall time and its
instruction count; no assertion (figures for docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from tests.engine.test_image import DEBIAN_MIRROR, DEBOOTSTRAP_ARGS, ROOT, build_python_base
from tests.testbed.dockerd import DockerDaemon

FULL_BASE = "bgbench-python:full"


def full_base(daemon: DockerDaemon, workdir: Path) -> str:
    """The debootstrap root without the suite's trimming (cached beside the slim one)."""
    cache = Path.home() / ".cache" / "traefik-bluegreen-tests" / "rootfs-bench-full.tar"
    if not cache.exists():
        rootfs = workdir / "full"
        subprocess.run(
            ["debootstrap", *DEBOOTSTRAP_ARGS, str(rootfs), DEBIAN_MIRROR],
            check=True, capture_output=True, timeout=900,
        )  # fmt: skip
        rootfs.chmod(0o755)
        subprocess.run(["tar", "-C", str(rootfs), "-cf", str(cache), "."], check=True)
        shutil.rmtree(rootfs, ignore_errors=True)
    with open(cache, "rb") as source:
        subprocess.run(
            [daemon.docker_cli, "import", "-", FULL_BASE],
            stdin=source, env=daemon.env(), check=True, capture_output=True,
        )  # fmt: skip
    return FULL_BASE


def context_of(tree: Path, workdir: Path) -> Path:
    """A build context as tests/engine/test_image.py makes it, from ``tree``."""
    context = workdir / "context"
    shutil.rmtree(context, ignore_errors=True)
    context.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md", ".dockerignore"):
        shutil.copy(tree / name, context / name)
    for package in ("provider", "deploy"):
        shutil.copytree(
            tree / package, context / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    subprocess.run(
        ["python3", "-m", "pip", "download", "-q", "--only-binary=:all:",
         "-d", str(context / "deploy" / "wheels"),
         "-r", str(tree / "deploy" / "requirements.lock")],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    return context


def build(daemon: DockerDaemon, context: Path, base: str) -> float:
    """Seconds of one cache-less build; the image is removed afterwards."""
    started = time.monotonic()
    subprocess.run(
        [daemon.docker_cli, "build", "-q", "--build-arg", f"BASE={base}",
         "-f", "deploy/Dockerfile", "-t", "bgbench-provider:x", str(context)],
        env={**daemon.env(), "DOCKER_BUILDKIT": "0"}, cwd=context,
        check=True, capture_output=True, timeout=2400,
    )  # fmt: skip
    seconds = time.monotonic() - started
    daemon.docker("rmi", "-f", "bgbench-provider:x")
    daemon.docker("image", "prune", "-f", check=False)
    return seconds


def instructions(context: Path) -> int:
    text = (context / "deploy" / "Dockerfile").read_text()
    joined = text.replace("\\\n", " ")
    return sum(1 for line in joined.splitlines() if line[:1].isalpha())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", default="c611f7f")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bgbench-image-") as tmp:
        work = Path(tmp)
        old_tree = work / "old"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach",
                        str(old_tree), args.old], check=True)  # fmt: skip
        daemon = DockerDaemon.start(work / "dockerd")
        try:
            slim = build_python_base(daemon, work / "base")
            full = full_base(daemon, work)
            contexts = {
                "old": context_of(old_tree, work / "c-old"),
                "new": context_of(ROOT, work / "c-new"),
            }
            cases = [("old", full), ("old", slim), ("new", slim)]
            for name, context in contexts.items():
                print(f"{name} Dockerfile: {instructions(context)} instructions", flush=True)
            for round_ in range(args.rounds):
                order = cases if round_ % 2 == 0 else cases[::-1]
                for tree, base in order:
                    seconds = build(daemon, contexts[tree], base)
                    print(f"round {round_ + 1}: {tree} Dockerfile FROM {base}: {seconds:.0f} s",
                          flush=True)  # fmt: skip
        finally:
            daemon.stop()
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                            str(old_tree)], check=False)  # fmt: skip


if __name__ == "__main__":
    main()
