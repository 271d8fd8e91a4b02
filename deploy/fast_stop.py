"""Stopping the old color's known containers with the Docker CLI instead of a compose call.

After Traefik applied a switch and nothing is open to the old color, most of what was
left of a deploy was docker-compose v1 starting up for ``compose stop``: 1 to 2.5 s per
call on a quiet host, about 4 s on a loaded one, before its stop began
(docs/benchmarks.md, the handover). Compose gives each container its service's
``stop_grace_period`` and ``stop_signal`` (``Config.StopTimeout``, ``Config.StopSignal``;
checked with Debian's docker-compose 1.29), so ``docker stop <ids>`` stops them just as
``compose stop`` would: the same signal, the same grace period, then SIGKILL. Only the
containers the provider listed for the color go this way; with none listed, or a
``docker stop`` that fails, the caller falls back to compose.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence


def stop_containers(environ: Mapping[str, str], ids: Sequence[str], timeout: float) -> bool:
    """``docker stop`` each of ``ids`` (their own signal and grace period); ``True`` when
    every one is stopped, ``False`` when the caller should ask compose instead."""
    docker = shutil.which("docker", path=environ.get("PATH", os.defpath))
    if docker is None or not ids:
        return False
    try:
        result = subprocess.run(
            [docker, "stop", *ids],
            env=dict(environ),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            process_group=0,  # as compose's calls: nothing it leaves may signal us
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return result.returncode == 0
