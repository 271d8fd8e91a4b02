"""SIGTERM while ``compose up`` runs: compose is stopped, the deploy cleans up, exit 143.

The deploy of ``tests/traefik/test_deploy.py``'s app (a real ``bluegreen serve``,
Traefik, the private engine and Debian's ``docker-compose``), with an image on a
registry on 127.0.0.1 that answers the registry ping and then never answers the
manifest request: ``compose up`` is pulling, for as long as the test wants, with
the real engine doing the pulling. The manifest request reaching the registry is
the signal that compose is in the middle of ``up``; then the CLI gets SIGTERM,
as ``docker stop`` or a cancelled CI job sends it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from deploy import signals
from tests.testbed.compose import REPO_ROOT, ComposeFactory
from tests.testbed.containers import ContainerFactory
from tests.testbed.dockerd import DockerDaemon
from tests.testbed.stack import StackFactory, body_of
from tests.traefik import test_deploy
from tests.traefik.test_deploy import deploy_in_background, explain, make_app
from tests.waiting import wait_until

#: test_deploy's fixtures, used here as they are.
app_images = test_deploy.app_images
compose_factory = test_deploy.compose_factory

#: Bounds for events, not timings: each is far above what the step takes here.
PULL_STARTS_WITHIN_S = 90.0
EXITS_WITHIN_S = 60.0


@dataclass
class StallingRegistry:
    """A registry that says it speaks v2 and then holds every manifest request open."""

    url: str
    pulling: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    @property
    def host(self) -> str:
        return self.url.removeprefix("http://")


@pytest.fixture
def stalling_registry() -> Iterator[StallingRegistry]:
    holder: list[StallingRegistry] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            registry = holder[0]
            if "/manifests/" in self.path:
                registry.pulling.set()
                registry.release.wait(timeout=300)
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Docker-Distribution-API-Version", "registry/2.0")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        do_HEAD = do_GET

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the test waits on ``pulling``."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    holder.append(StallingRegistry(f"http://127.0.0.1:{server.server_address[1]}"))
    thread = threading.Thread(target=server.serve_forever, name="stalling-registry")
    thread.start()
    try:
        yield holder[0]
    finally:
        holder[0].release.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


#: What ``bluegreen`` does around a compose command, with any command in its place.
STREAMED = """
import os, sys
from deploy import compose, signals
with signals.sigterm_as_interrupt():
    try:
        compose._streamed(sys.argv[1:], os.environ, 900)
    except signals.Terminated:
        print("terminated", flush=True)
        sys.exit(143)
"""


@pytest.mark.parametrize(
    "script",
    [
        "trap '' TERM; sleep 300 & echo started $$ $!; wait",
        "(trap '' TERM; exec sleep 300) & echo started $$ $!; wait",
    ],
    ids=["ignores-sigterm", "grandchild-holds-the-output"],
)
def test_sigterm_reaches_the_whole_child_group_and_never_waits_on_its_output(
    script: str,
) -> None:
    """The compose runner under SIGTERM: the child's group gets the signal, whatever of it
    ignores the signal is killed, and the runner returns although a grandchild held the
    output pipe; no process of the group is left."""
    with subprocess.Popen(
        [sys.executable, "-c", STREAMED, "sh", "-c", script],
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as proc:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert "started" in line, line
        group = [int(pid) for pid in line.split()[-2:]]
        try:
            os.kill(proc.pid, signal.SIGTERM)
            out, err = proc.communicate(timeout=EXITS_WITHIN_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running {EXITS_WITHIN_S:g}s after SIGTERM; group {group}")
        finally:
            for pid in [proc.pid, *group]:  # what this test started, by PID, if left
                if alive(pid):
                    os.kill(pid, signal.SIGKILL)

    assert (143, "terminated\n") == (proc.returncode, out), err
    # SIGKILLed before the runner returned; the kernel may not have reaped them yet.
    wait_until("the child's group gone", lambda: not any(alive(pid) for pid in group), 10.0)


def children(pid: int) -> list[tuple[int, str]]:
    """``pid``'s child processes: (pid, command line)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid:
            found.append((int(entry.name), cmdline))
    return found


def alive(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["sigterm", "sigint"]
)
def test_a_signal_during_compose_up_stops_compose_and_cleans_up(
    signum: signal.Signals,
    code: int,
    stalling_registry: StallingRegistry,
    stack_factory: StackFactory,
    compose_factory: ComposeFactory,
    containers: ContainerFactory,
    docker_daemon: DockerDaemon,
    app_images: dict[str, str],
) -> None:
    """SIGTERM (or SIGINT, sent to the CLI alone, not its group) while compose is pulling
    the new image (the image check, before anything starts): compose is gone by the time
    the CLI exits (143; 130), it says nothing changed, green was not recreated and blue
    still serves."""
    app = make_app(stack_factory, compose_factory, containers, docker_daemon, app_images["v1"])
    green_before = app.project.container_ids("web-green")
    image = f"{stalling_registry.host}/bgtest/app:stalled"

    with deploy_in_background(app, "--image", image, "--timeout", "300") as proc:
        if not stalling_registry.pulling.wait(timeout=PULL_STARTS_WITHIN_S):
            proc.kill()
            out, err = proc.communicate(timeout=30)
            pytest.fail(f"compose never asked the registry for the manifest\n{out}\n{err}")
        composes = [(pid, cmd) for pid, cmd in children(proc.pid) if "docker-compose" in cmd]
        assert 1 == len(composes), children(proc.pid)
        [(compose_pid, compose_cmd)] = composes
        assert " pull web-green" in compose_cmd  # the image is checked (pulled) before `up`
        os.kill(proc.pid, signum)
        try:
            out, err = proc.communicate(timeout=EXITS_WITHIN_S)
        except subprocess.TimeoutExpired:
            pytest.fail(
                f"the CLI still ran {EXITS_WITHIN_S:g}s after the signal "
                f"(compose {'alive' if alive(compose_pid) else 'gone'})"
            )
    result = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

    assert not alive(compose_pid), compose_cmd
    assert code == proc.returncode, explain(result)
    assert "deploy interrupted while checking" in err, explain(result)
    assert "nothing was started or changed, blue keeps serving web" in err, explain(result)
    assert green_before == app.project.container_ids("web-green")
    assert ["running"] == app.states("green")  # untouched: nothing was started or stopped
    assert "blue" == app.stack.provider.active("web")
    assert body_of("blue") == app.served()


@pytest.mark.parametrize(
    ("signum", "raised"),
    [(signal.SIGTERM, signals.Terminated), (signal.SIGINT, KeyboardInterrupt)],
    ids=["sigterm", "sigint"],
)
def test_an_interrupt_while_compose_starts_is_held_until_it_can_be_forwarded(
    signum: int, raised: type[BaseException]
) -> None:
    """A signal between ``Popen`` and the ``try`` that forwards it is held, then raised by
    ``release`` inside that ``try`` (it used to escape with compose left running)."""
    with signals.sigterm_as_interrupt():
        held = signals.HeldInterrupts()
        with held:
            os.kill(os.getpid(), signum)
            assert [signum] == held.pending  # nothing raised while compose starts
            with pytest.raises(raised):
                held.release()
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
