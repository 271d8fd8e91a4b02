"""``deploy/requirements.lock`` pins pyproject.toml's dependencies with hashes; the image uses it.

The image installs from the lock alone (``pip install --require-hashes``), so a rebuild
installs the same files or fails. The lock is made by pip-compile (the command is in its
header, and in docs/security.md); this keeps it in step with pyproject.toml without the
network: every runtime dependency and the build backend pinned to a version its
specifier accepts, every pin with at least one sha256.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "deploy" / "requirements.lock"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\]+)")
REGENERATE = (
    "pip-compile --allow-unsafe --build-deps-for=wheel --generate-hashes "
    "--index-url=https://pypi.org/simple --no-emit-index-url "
    "--output-file=deploy/requirements.lock --strip-extras pyproject.toml"
)


def pins() -> dict[str, tuple[str, list[str]]]:
    """Each pinned package (canonical name): its version and hashes."""
    found: dict[str, tuple[str, list[str]]] = {}
    current = ""
    for line in LOCK.read_text().splitlines():
        if match := PIN.match(line):
            current = canonicalize_name(match.group(1))
            found[current] = (match.group(2), [])
        elif line.strip().startswith("--hash=sha256:"):
            found[current][1].append(line.strip().removeprefix("--hash=sha256:").rstrip(" \\"))
    return found


def wanted() -> list[Requirement]:
    """pyproject.toml's runtime dependencies and its build backend."""
    doc = tomllib.loads((ROOT / "pyproject.toml").read_text())
    raw = [*doc["project"]["dependencies"], *doc["build-system"]["requires"]]
    return [Requirement(r) for r in raw]


def test_every_dependency_is_pinned_to_a_version_its_specifier_accepts() -> None:
    """A dependency added to pyproject.toml, or a range moved past the pin, fails here
    until the lock is compiled again."""
    locked = pins()
    problems = []
    for requirement in wanted():
        name = canonicalize_name(requirement.name)
        if name not in locked:
            problems.append(f"{requirement} is not in the lock")
        elif not requirement.specifier.contains(locked[name][0], prereleases=True):
            problems.append(f"{requirement} does not accept the locked {locked[name][0]}")
    assert [] == problems, f"regenerate the lock: {REGENERATE}"


def test_every_pin_carries_sha256_hashes() -> None:
    """--require-hashes installs nothing without one."""
    locked = pins()
    assert len(locked) >= len(wanted())
    bad = {n: h for n, (_, h) in locked.items() if not h or any(len(x) != 64 for x in h)}
    assert {} == bad


def test_the_lock_says_how_it_was_made() -> None:
    """Its header holds the command that makes it again."""
    assert REGENERATE in " ".join(LOCK.read_text().split())


def test_the_image_installs_from_the_lock_with_hashes() -> None:
    """deploy/Dockerfile installs the dependencies from the lock only, hashes required, and
    the package itself without dependencies or a fresh build environment."""
    dockerfile = " ".join((ROOT / "deploy" / "Dockerfile").read_text().split())
    assert dockerfile.count("--require-hashes -r /src/deploy/requirements.lock") == 2
    assert "pip install --no-index --no-deps --no-build-isolation /src" in dockerfile
