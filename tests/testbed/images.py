"""The test image, built locally from the host's static busybox.

There is no registry to pull from, so the image is a tar of a tiny root file
system (``/bin/busybox`` plus one symlink per applet) fed to ``docker import``.
Busybox gives us ``sh`` to script the container, ``httpd`` as a backend and
``wget`` for a real Docker HEALTHCHECK, all without network access.
"""

from __future__ import annotations

import io
import shlex
import struct
import subprocess
import tarfile
from pathlib import Path

from .dockerd import DockerDaemon
from .tools import missing_tool, which

DEFAULT_IMAGE = "bgtest-busybox:latest"
BUSYBOX_HINT = "apt-get install busybox-static"
WWW_DIR = "/tmp/www"
HEALTH_FILE = f"{WWW_DIR}/health"
# Used when ``busybox --list`` is unavailable; covers what the tests script.
FALLBACK_APPLETS = (
    "sh", "ash", "httpd", "wget", "sleep", "cat", "echo", "printf", "kill", "ls", "rm",
    "mkdir", "touch", "test", "[", "true", "false", "ps", "env", "grep", "sed", "id",
    "date", "hostname", "nc", "mv", "cp", "ln", "chmod", "pwd", "uname", "head", "tail",
)  # fmt: skip
PT_INTERP = 3


def find_busybox() -> str | None:
    """Path of a busybox binary (busybox-static installs ``/bin/busybox``)."""
    return which("busybox", "/bin", "/usr/bin")


def is_static_elf(path: Path) -> bool:
    """True for a 64-bit little-endian ELF with no PT_INTERP, i.e. it runs without a libc.

    A dynamically linked busybox would be copied into an image with no loader
    and fail with a confusing "no such file or directory" at ``docker run``.
    """
    with open(path, "rb") as elf:
        header = elf.read(64)
        if len(header) < 64 or header[:4] != b"\x7fELF" or header[4] != 2 or header[5] != 1:
            return False
        (phoff,) = struct.unpack_from("<Q", header, 0x20)
        phentsize, phnum = struct.unpack_from("<HH", header, 0x36)
        for index in range(phnum):
            elf.seek(phoff + index * phentsize)
            (p_type,) = struct.unpack("<I", elf.read(4))
            if p_type == PT_INTERP:
                return False
    return True


def _applets(busybox: str) -> list[str]:
    try:
        listed = subprocess.run(
            [busybox, "--list"], capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return sorted(FALLBACK_APPLETS)
    names = {
        line.strip() for line in listed.stdout.splitlines() if line.strip() and "/" not in line
    }
    return sorted(names | {"sh"})


def rootfs_tar(busybox: str) -> bytes:
    """A reproducible tar of the minimal root file system (mtime 0, root-owned)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:

        def add_dir(name: str, mode: int = 0o755) -> None:
            info = tarfile.TarInfo(name)
            info.type = tarfile.DIRTYPE
            info.mode = mode
            tar.addfile(info)

        def add_file(name: str, data: bytes, mode: int = 0o644) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = mode
            tar.addfile(info, io.BytesIO(data))

        for directory in ("bin", "etc", "dev", "proc", "sys", "root", "var", "www"):
            add_dir(directory)
        add_dir("tmp", 0o1777)
        add_file("bin/busybox", Path(busybox).read_bytes(), 0o755)
        for applet in _applets(busybox):
            if applet == "busybox":
                continue
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type = tarfile.SYMTYPE
            link.linkname = "busybox"
            link.mode = 0o777
            tar.addfile(link)
        add_file(
            "etc/passwd",
            b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
        )
        add_file("etc/group", b"root:x:0:\nnogroup:x:65534:\n")
    return buffer.getvalue()


def image_exists(daemon: DockerDaemon, name: str) -> bool:
    """True when ``name`` is already present in ``daemon``."""
    return daemon.docker("image", "inspect", name, check=False).returncode == 0


def build_busybox_image(daemon: DockerDaemon, name: str = DEFAULT_IMAGE) -> str:
    """Import the busybox image as ``name`` unless it exists; return ``name``.

    Idempotent, so a restarted daemon (same data-root) or a second call is cheap.
    """
    if image_exists(daemon, name):
        return name
    busybox = find_busybox()
    if busybox is None:
        missing_tool("busybox", BUSYBOX_HINT)
    if not is_static_elf(Path(busybox)):
        missing_tool(f"a statically linked busybox (found dynamic {busybox})", BUSYBOX_HINT)
    daemon.docker(
        "import", "--change", 'CMD ["sh"]', "--change", "ENV PATH=/bin", "-", name,
        input=rootfs_tar(busybox),
    )  # fmt: skip
    return name


def health_command(port: int) -> str:
    """The HEALTHCHECK command: healthy while ``/health`` exists and httpd serves it."""
    return f"wget -q -O- http://127.0.0.1:{port}/health"


def backend_command(port: int, color: str, *, healthy: bool = True) -> list[str]:
    """``sh -c`` argv for a backend on ``127.0.0.1:port``; ``/`` answers exactly ``color + "\\n"``.

    ``/health`` exists only if ``healthy``; tests make health flap by creating
    or removing :data:`HEALTH_FILE` with ``docker exec``.  ``exec`` makes httpd
    the container's main process, so stopping the container stops the backend.
    """
    if not 1 <= port <= 65535:
        raise ValueError(f"port out of range: {port}")
    lines = [
        "set -e",
        f"mkdir -p {WWW_DIR}",
        f"printf '%s\\n' {shlex.quote(color)} > {WWW_DIR}/index.html",
    ]
    if healthy:
        lines.append(f"echo ok > {HEALTH_FILE}")
    lines.append(f"exec httpd -f -p 127.0.0.1:{port} -h {WWW_DIR}")
    return ["sh", "-c", "\n".join(lines)]
