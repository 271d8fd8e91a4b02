"""Writing into a project directory that others may write to, often as root.

``bluegreen init`` and a deploy recording its image typically run under
``sudo`` in a directory the project's users can write. A name there that is a
symbolic link must not make root truncate, re-permission or replace a file of
the link maker's choice, and rewriting the user's own ``.env`` must leave it
theirs (owner, group, mode), or they cannot read it afterwards. So:

- directories and token files are opened with ``O_NOFOLLOW`` (a link is refused
  with :class:`UnsafeFile`), modes are set on the open descriptor, never on a path;
- new files are created ``O_CREAT | O_EXCL`` under a temporary name, then renamed
  into place, which replaces a name, never what a link points at;
- a symlinked ``.env`` is followed only when the link and its target have the
  same owner (the rule of Linux's ``fs.protected_symlinks``): a user's own link to
  their own file is theirs to keep; a link to someone else's file is refused.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path

from deploy.errors import UnsafeFile
from provider import atomic_file

#: The provider image's user (``deploy/Dockerfile``: ``USER 10001:10001``): it reads the
#: token files compose bind-mounts, so root's ``init`` gives them to it.
PROVIDER_UID = 10001
PROVIDER_GID = 10001


def _refuse_link(path: Path, what: str) -> UnsafeFile:
    return UnsafeFile(
        f"{path} is a symbolic link; {what} must be a real one (a link could make this "
        f"command overwrite or re-permission the file it points at). Remove it and run again"
    )


@contextlib.contextmanager
def private_directory(path: Path) -> Iterator[int]:
    """An fd of directory ``path`` (created 0700 if missing), made 0700 through the fd.

    A symbolic link (or anything but a directory) at ``path`` is refused.
    """
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR) and path.is_symlink():
            raise _refuse_link(path, "the secrets directory") from None
        raise
    try:
        os.fchmod(fd, 0o700)
        yield fd
    finally:
        os.close(fd)


def read_token(directory: int, name: str, shown: Path) -> str | None:
    """The token file ``name`` in the open ``directory``: its text, ``None`` when missing.

    A symbolic link is refused (its target would be taken for a token, or later replaced).
    """
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=directory)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _refuse_link(shown, "a token file") from None
        raise
    with os.fdopen(fd, "r", encoding="utf-8", errors="replace") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise UnsafeFile(f"{shown} is not a regular file; remove it and run again")
        return handle.read()


def write_token(directory: int, name: str, text: str) -> None:
    """Put a new token file ``name`` (mode 0600) into the open ``directory``, atomically.

    Written under a fresh temporary name (``O_CREAT | O_EXCL | O_NOFOLLOW``) and
    renamed over ``name``: whatever ``name`` was, nothing it pointed at is touched.
    As root the file goes to the provider image's user, who must read it; a
    non-root ``init`` cannot give it away, so its file stays readable to the
    container's user (0644; the 0700 directory keeps others out).
    """
    temp = f".{name}.{secrets.token_hex(6)}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(temp, flags, 0o600, dir_fd=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            if os.geteuid() == 0:
                os.fchown(handle.fileno(), PROVIDER_UID, PROVIDER_GID)
                os.fchmod(handle.fileno(), 0o600)
            else:
                os.fchmod(handle.fileno(), 0o644)
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, name, src_dir_fd=directory, dst_dir_fd=directory)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp, dir_fd=directory)
        raise


def real_path(path: Path) -> Path:
    """Where a rewrite of ``path`` must land: ``path``, or the file its symbolic link names.

    A link is followed only to an existing regular file with the link's owner.
    """
    try:
        link = os.lstat(path)
    except FileNotFoundError:
        return path
    if not stat.S_ISLNK(link.st_mode):
        return path
    target = Path(os.path.realpath(path))
    try:
        info = os.stat(target)
    except OSError as exc:
        raise UnsafeFile(
            f"{path} is a symbolic link to {target}, which cannot be read ({exc.strerror}); "
            "fix or remove the link"
        ) from exc
    if not stat.S_ISREG(info.st_mode):
        raise UnsafeFile(f"{path} links to {target}, which is not a regular file")
    if info.st_uid != link.st_uid:
        raise UnsafeFile(
            f"{path} is a symbolic link (owner uid {link.st_uid}) to {target} (owner uid "
            f"{info.st_uid}); a link is followed only to a file of its own owner. Replace "
            "the link with the file, or fix the owners"
        )
    return target


def replace_keeping_owner(path: Path, data: bytes) -> None:
    """Replace file ``path`` with ``data`` atomically, keeping its owner, group and mode.

    The mode loses only its bits for others (the file may hold a token); a new
    file is 0600. The temporary file is made beside ``path`` (same filesystem),
    so ``os.replace`` is atomic. Not root, the owner cannot be given away: the
    file then becomes the writer's, as any editor's save would make it. The
    temporary file, fsync and rename are the state file's (:mod:`provider.atomic_file`).
    """
    try:
        before: os.stat_result | None = os.lstat(path)
    except FileNotFoundError:
        before = None
    if before is not None and not stat.S_ISREG(before.st_mode):
        raise UnsafeFile(f"{path} is not a regular file")
    mode = 0o600 if before is None else (stat.S_IMODE(before.st_mode) & 0o770) | 0o600

    def prepare(fd: int) -> None:
        if before is not None and (before.st_uid, before.st_gid) != (os.geteuid(), os.getegid()):
            with contextlib.suppress(PermissionError):
                os.fchown(fd, before.st_uid, before.st_gid)
        os.fchmod(fd, mode)

    atomic_file.replace(path, data, prepare)
