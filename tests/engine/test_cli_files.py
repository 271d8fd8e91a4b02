"""The files the CLI writes as root in a project directory others may write to.

``bluegreen init`` runs as a subprocess against the private test engine, as
``sudo bluegreen init`` would (the tests run as root); ``envfile.update`` is the
rewrite a deploy does when it records its image. Everything happens on the real
filesystem: a symbolic link planted in the project directory must not make
root truncate, re-permission or replace the file it points at, and the user's
own ``.env`` keeps its owner, group and mode (and stays a link if it was one).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

import pytest

from deploy import envfile
from deploy.errors import UnsafeFile
from deploy.safe_files import PROVIDER_GID, PROVIDER_UID
from tests.engine.test_init import bluegreen, clean_env
from tests.testbed.dockerd import DockerDaemon

#: Owners that are not root, as a project's user and another local user.
USER_UID, USER_GID = 4242, 4343
OTHER_UID = 4545


@dataclass(frozen=True)
class Victim:
    """A file outside the project that a planted link points at."""

    path: Path
    text: str
    mode: int
    owner: tuple[int, int]

    @classmethod
    def make(cls, path: Path, text: str = "victim data\n", mode: int = 0o644) -> Victim:
        path.write_text(text)
        path.chmod(mode)
        return cls(path, text, mode, (0, 0))

    def assert_untouched(self) -> None:
        info = self.path.stat()
        assert (self.text, self.mode, self.owner) == (
            self.path.read_text(),
            stat.S_IMODE(info.st_mode),
            (info.st_uid, info.st_gid),
        )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """An empty project directory (init needs no compose file to write its files)."""
    directory = tmp_path / "project"
    directory.mkdir()
    return directory


def run_init(project: Path, docker_daemon: DockerDaemon, *extra: str) -> tuple[int, str]:
    result = bluegreen(project, "init", *extra, env=clean_env(DOCKER_HOST=docker_daemon.host))
    return result.returncode, result.stderr


@pytest.mark.parametrize("force", [False, True], ids=["rerun", "force"])
def test_init_refuses_a_token_file_that_is_a_link(
    force: bool, project: Path, tmp_path: Path, docker_daemon: DockerDaemon
) -> None:
    """secrets/bluegreen_token linking elsewhere: init exits 1 naming the link; the target
    keeps its content and mode (not truncated, not taken for a token, not chmodded)."""
    victim = Victim.make(tmp_path / "victim.conf")
    (project / "secrets").mkdir(mode=0o700)
    (project / "secrets" / "bluegreen_token").symlink_to(victim.path)

    code, err = run_init(project, docker_daemon, *(["--force"] if force else []))

    assert 1 == code, err
    assert "bluegreen init: secrets/bluegreen_token is a symbolic link" in err
    victim.assert_untouched()
    assert (project / "secrets" / "bluegreen_token").is_symlink()


def test_init_refuses_a_secrets_directory_that_is_a_link(
    project: Path, tmp_path: Path, docker_daemon: DockerDaemon
) -> None:
    """secrets/ linking to another directory: exit 1; that directory keeps its mode and
    gets no token file."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    elsewhere.chmod(0o755)
    (project / "secrets").symlink_to(elsewhere, target_is_directory=True)

    code, err = run_init(project, docker_daemon)

    assert 1 == code, err
    assert "bluegreen init: secrets is a symbolic link" in err
    assert 0o755 == stat.S_IMODE(elsewhere.stat().st_mode)
    assert [] == list(elsewhere.iterdir())


def test_init_as_root_gives_the_token_files_to_the_provider_user_only(
    project: Path, docker_daemon: DockerDaemon
) -> None:
    """Token files are 0600, owned by the provider image's user (who reads them in its
    container); a directory left 0755 by hand is made 0700 again."""
    (project / "secrets").mkdir(mode=0o755)
    (project / "secrets").chmod(0o755)

    code, err = run_init(project, docker_daemon)

    assert 0 == code, err
    files = sorted((project / "secrets").iterdir())
    assert ["bluegreen_provider_token", "bluegreen_token"] == [p.name for p in files]
    assert [(0o600, PROVIDER_UID, PROVIDER_GID)] * 2 == [
        (stat.S_IMODE(p.stat().st_mode), p.stat().st_uid, p.stat().st_gid) for p in files
    ]
    assert 0o700 == stat.S_IMODE((project / "secrets").stat().st_mode)


def test_sudo_init_leaves_the_users_env_file_theirs(
    project: Path, docker_daemon: DockerDaemon
) -> None:
    """The user's .env (their uid/gid, 0640) rewritten by a root init keeps owner, group
    and mode, so they can still read it; the user's own lines stay."""
    env = project / ".env"
    env.write_text("MINE=1\n")
    os.chown(env, USER_UID, USER_GID)
    env.chmod(0o640)

    code, err = run_init(project, docker_daemon)

    assert 0 == code, err
    info = env.stat()
    assert (USER_UID, USER_GID, 0o640) == (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode))
    assert "1" == envfile.read(env)["MINE"]
    assert "DOCKER_GID" in envfile.read(env)


def test_a_rewrite_keeps_a_linked_env_file_a_link_and_updates_its_target(
    tmp_path: Path,
) -> None:
    """.env → config/app.env (both the user's): the link stays, the target gets the value
    and keeps owner, group and mode; no stray temporary file is left beside either."""
    config = tmp_path / "config"
    config.mkdir()
    target = config / "app.env"
    target.write_text("A=1\n")
    os.chown(target, USER_UID, USER_GID)
    target.chmod(0o600)
    link = tmp_path / ".env"
    link.symlink_to(target)
    os.lchown(link, USER_UID, USER_GID)

    envfile.update(link, {"WEB_GREEN_IMAGE": "app:v2"})

    assert link.is_symlink() and target == link.resolve()
    assert {"A": "1", "WEB_GREEN_IMAGE": "app:v2"} == envfile.read(target)
    info = target.stat()
    assert (USER_UID, USER_GID, 0o600) == (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode))
    assert [".env", "config"] == sorted(p.name for p in tmp_path.iterdir())
    assert ["app.env"] == [p.name for p in config.iterdir()]


def test_a_rewrite_refuses_a_link_to_another_owners_file(tmp_path: Path) -> None:
    """A .env link made by one user pointing at a file of another (root's here): refused,
    the target keeps content, mode and owner; the link is left as it was."""
    victim = Victim.make(tmp_path / "shadow", "root:secret\n", 0o640)
    project = tmp_path / "project"
    project.mkdir()
    link = project / ".env"
    link.symlink_to(victim.path)
    os.lchown(link, OTHER_UID, OTHER_UID)

    with pytest.raises(UnsafeFile, match="a link is followed only to a file of its own owner"):
        envfile.update(link, {"WEB_GREEN_IMAGE": "app:v2"})

    victim.assert_untouched()
    assert link.is_symlink()
