"""``bluegreen status/switch/history`` and every error message, against a real provider API.

The provider runs in-process (aiohttp on 127.0.0.1, containers fed in as
normalized observations); the CLI runs in a worker thread exactly as the
console script would (``deploy.cli.main``), so these tests pin the text and
exit codes a user sees without Docker.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import structlog
from aiohttp import web
from aiohttp.test_utils import TestServer

from deploy import cli
from provider.api import CONTROLLER
from provider.core.model import Health
from provider.server import build_app
from provider.settings import Settings
from tests.factories import make_container
from tests.testbed.ports import free_port

TOKEN = "cli-test-token"
ServerFactory = Callable[[web.Application], Awaitable[TestServer]]


@dataclass(frozen=True)
class Run:
    """What one ``bluegreen`` invocation printed and returned."""

    code: int
    out: str
    err: str


@dataclass
class Provider:
    """An in-process provider and a way to run the CLI against it."""

    url: str
    app: web.Application
    capsys: pytest.CaptureFixture[str]

    async def run(self, *argv: str, token: str | None = TOKEN, url: str | None = None) -> Run:
        env = {"BLUEGREEN_URL": url or self.url, "PATH": "/nonexistent"}
        if token is not None:
            env["BLUEGREEN_TOKEN"] = token
        self.capsys.readouterr()
        code = await asyncio.to_thread(cli.main, list(argv), env)
        captured = self.capsys.readouterr()
        return Run(code, captured.out, captured.err)


async def start_provider(
    aiohttp_server: ServerFactory,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    containers: list[Any],
    **settings: Any,
) -> Provider:
    values: dict[str, Any] = {"state_file": tmp_path / "state.json", "token": TOKEN}
    values.update(settings)
    app = build_app(Settings(**values), watch_docker=False)
    controller = app[CONTROLLER]
    await controller.replace_containers(containers)
    await controller.set_docker_connected(True)
    await controller.mark_synced()
    server = await aiohttp_server(app)
    return Provider(f"http://127.0.0.1:{server.port}", app, capsys)


def web_blue_green(green: Health = Health.HEALTHY) -> list[Any]:
    return [
        make_container("web", "blue", port=8081, created=1.0, name="app_web-blue_1"),
        make_container(
            "web", "green", port=8082, created=2.0, health=green, name="app_web-green_1"
        ),
        make_container("api", "blue", port=9001, created=1.0, name="app_api-blue_1"),
    ]


@pytest.fixture(autouse=True)
def quiet_provider_logs() -> Iterator[None]:
    """Keep the in-process provider's log lines out of the CLI's captured stdout."""
    with structlog.testing.capture_logs():
        yield


@pytest.fixture
async def provider(
    aiohttp_server: ServerFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> Provider:
    return await start_provider(aiohttp_server, tmp_path, capsys, web_blue_green())


async def test_status_lists_every_service_with_its_active_color(provider: Provider) -> None:
    """`bluegreen status` prints one row per service and Docker's state; exit 0."""
    run = await provider.run("status")
    assert 0 == run.code
    lines = run.out.splitlines()
    assert ["SERVICE", "ACTIVE", "BLUE", "GREEN", "LAST", "SWITCH", "NOTES"] == lines[0].split()
    assert ["api", "blue", "1/1", "routable", "-", "never", "-"] == lines[1].split()
    assert ["web", "blue", "1/1", "routable", "1/1", "routable", "never", "-"] == lines[2].split()
    assert "docker: connected" == lines[3]


async def test_status_of_one_service_shows_containers(provider: Provider) -> None:
    """`bluegreen status web` shows each container's state, health and address."""
    run = await provider.run("status", "web")
    assert 0 == run.code
    assert run.out.startswith("web: active blue\nlast switch: never\n")
    rows = [line.split() for line in run.out.splitlines() if line.startswith(("*", " "))]
    expected = [
        ["*blue", "app_web-blue_1", "running", "healthy", "yes", "http://127.0.0.1:8081"],
        ["green", "app_web-green_1", "running", "healthy", "yes", "http://127.0.0.1:8082"],
    ]
    assert expected == [[r[0], r[1], r[3], r[4], r[5], r[6]] for r in rows]
    assert "blue: 1 of 1 required routable, ready" in run.out


async def test_status_json_is_the_api_document(provider: Provider) -> None:
    """--json prints the provider's /status document unchanged (sorted keys)."""
    run = await provider.run("status", "web", "--json")
    doc = json.loads(run.out)
    assert ("web", "blue", None) == (doc["service"], doc["active"], doc["previous"])
    assert 0 == run.code


async def test_switch_history_and_switch_back(provider: Provider) -> None:
    """`switch` moves traffic and says from → to; `history` lists it; a repeat changes nothing."""
    run = await provider.run("switch", "web", "--reason", "test")
    assert (0, "web: blue → green (switch #1, reason test)\n") == (run.code, run.out)

    again = await provider.run("switch", "web", "green")
    assert (0, "web: already green, nothing changed\n") == (again.code, again.out)

    history = await provider.run("history", "web")
    rows = [line.split() for line in history.out.splitlines()]
    assert ["SEQ", "AT", "SERVICE", "FROM", "TO", "REASON", "ACTOR"] == rows[0]
    assert ["1", "web", "blue", "green", "test", "api"] == [rows[1][0], *rows[1][3:]]

    as_json = json.loads((await provider.run("history", "--json")).out)
    assert ["green"] == [r["to"] for r in as_json["history"]]
    status = await provider.run("status")
    assert "blue → green 0s ago (test, api)" in status.out


async def test_switch_refused_says_why_and_how_to_force(
    aiohttp_server: ServerFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 409 exits 6 with the provider's reason; --force switches anyway."""
    provider = await start_provider(
        aiohttp_server, tmp_path, capsys, web_blue_green(green=Health.UNHEALTHY)
    )
    run = await provider.run("switch", "web")
    assert 6 == run.code
    expected = (
        "bluegreen switch: switch refused: green has 0 routable container(s) for service web; "
        "1 needed (pass force to switch anyway)\n"
    )
    assert expected == run.err
    forced = await provider.run("switch", "web", "--force")
    assert (0, "web: blue → green (switch #1, reason manual)\n") == (forced.code, forced.out)


async def test_rollback_switches_at_once_when_the_previous_color_runs(
    provider: Provider,
) -> None:
    """With the previous color still ready, rollback needs no compose and switches at once."""
    await provider.run("switch", "web", "green")
    run = await provider.run("rollback", "web")
    assert 0 == run.code
    assert "switched web: green → blue" in run.out
    assert run.out.splitlines()[-1].startswith("rolled back web: green → blue, in ")


async def test_rollback_needs_the_token(provider: Provider) -> None:
    """rollback without BLUEGREEN_TOKEN: exit 4 before anything is started or switched."""
    await provider.run("switch", "web", "green")
    run = await provider.run("rollback", "web", token=None)
    expected = (
        "bluegreen rollback: rollback switches through the API: set BLUEGREEN_TOKEN (or pass "
        "--token) to the token `bluegreen serve` was started with; nothing was changed\n"
    )
    assert (4, expected) == (run.code, run.err)


async def test_rollback_without_previous_color(provider: Provider) -> None:
    """A service never switched has nothing to roll back to: exit 6 with a pointer to history."""
    run = await provider.run("rollback", "web")
    expected = (
        "bluegreen rollback: web has no previous color to roll back to (it was never "
        "switched; see `bluegreen history web`)\n"
    )
    assert (6, expected) == (run.code, run.err)


@pytest.mark.parametrize(
    ("argv", "token", "code", "message"),
    [
        (
            ["switch", "web"],
            None,
            4,
            "no token was sent: set BLUEGREEN_TOKEN (or pass --token) to the token "
            "`bluegreen serve` was started with",
        ),
        (
            ["switch", "web"],
            "wrong",
            4,
            "the provider rejected the token: BLUEGREEN_TOKEN (or --token) must equal the "
            "provider's BLUEGREEN_TOKEN / --token",
        ),
        (
            ["status", "nope"],
            TOKEN,
            5,
            "unknown service 'nope': no container carries the label bluegreen.service=nope. "
            "`bluegreen status` lists the known services.",
        ),
        (
            ["switch", "nope"],
            TOKEN,
            5,
            "unknown service 'nope': no container carries the label bluegreen.service=nope. "
            "`bluegreen status` lists the known services.",
        ),
        (
            ["deploy", "web", "--compose-service", "{svc}"],
            TOKEN,
            2,
            "--compose-service '{svc}' may use only {service} and {color}",
        ),
    ],
)
async def test_error_messages(
    provider: Provider, argv: list[str], token: str | None, code: int, message: str
) -> None:
    """Each actionable error: its exit code and exactly what the user reads."""
    run = await provider.run(*argv, token=token)
    assert (code, f"bluegreen {argv[0]}: {message}\n") == (run.code, run.err)
    assert "" == run.out


async def test_token_from_bluegreen_token_file(provider: Provider, tmp_path: Path) -> None:
    """BLUEGREEN_TOKEN_FILE (and --token-file) give the CLI its token; a missing file, or a
    file and a token both, exit 4 naming the file, before anything changes."""
    token_file = tmp_path / "operator-token"
    token_file.write_text(TOKEN + "\n")
    base = {"BLUEGREEN_URL": provider.url, "PATH": "/nonexistent"}

    async def run(argv: list[str], env: dict[str, str]) -> Run:
        provider.capsys.readouterr()
        code = await asyncio.to_thread(cli.main, argv, {**base, **env})
        captured = provider.capsys.readouterr()
        return Run(code, captured.out, captured.err)

    by_env = await run(["switch", "web", "green"], {"BLUEGREEN_TOKEN_FILE": str(token_file)})
    by_flag = await run(["switch", "web", "blue", "--token-file", str(token_file)], {})
    missing = await run(["switch", "web"], {"BLUEGREEN_TOKEN_FILE": str(tmp_path / "nope")})
    both = await run(
        ["switch", "web"],
        {"BLUEGREEN_TOKEN_FILE": str(token_file), "BLUEGREEN_TOKEN": TOKEN},
    )

    assert (0, 0) == (by_env.code, by_flag.code), by_env.err + by_flag.err
    assert (4, 4) == (missing.code, both.code)
    assert f"token file '{tmp_path / 'nope'}' (BLUEGREEN_TOKEN_FILE" in missing.err
    assert "does not exist" in missing.err
    assert "both BLUEGREEN_TOKEN and BLUEGREEN_TOKEN_FILE are given" in both.err
    assert ["green", "blue"] == [r["to"] for r in provider.app[CONTROLLER].history("web")]


async def test_url_and_token_come_from_the_compose_directorys_env_file(
    provider: Provider, tmp_path: Path
) -> None:
    """With nothing exported, the CLI takes BLUEGREEN_URL and BLUEGREEN_TOKEN_FILE (relative
    to it) from the .env beside COMPOSE_FILE; the environment still wins over the file."""
    project = tmp_path / "project"
    (project / "secrets").mkdir(parents=True)
    (project / "secrets" / "tok").write_text(TOKEN + "\n")
    (project / ".env").write_text(
        f"DOCKER_GID=999\nBLUEGREEN_URL={provider.url}\nBLUEGREEN_TOKEN_FILE=secrets/tok\n"
    )
    bare = {"PATH": "/nonexistent", "COMPOSE_FILE": str(project / "docker-compose.yml")}

    async def run(argv: list[str], env: dict[str, str]) -> Run:
        provider.capsys.readouterr()
        code = await asyncio.to_thread(cli.main, argv, env)
        captured = provider.capsys.readouterr()
        return Run(code, captured.out, captured.err)

    from_file = await run(["switch", "web", "green"], bare)
    env_wins = await run(["switch", "web", "blue"], {**bare, "BLUEGREEN_TOKEN": "wrong"})
    elsewhere = await run(["status"], {**bare, "COMPOSE_FILE": str(tmp_path / "x.yml")})

    assert (0, "web: blue → green (switch #1, reason manual)\n") == (
        from_file.code,
        from_file.out,
    ), from_file.err
    assert 4 == env_wins.code
    assert 3 == elsewhere.code and "127.0.0.1:8080" in elsewhere.err


async def test_token_never_printed(provider: Provider) -> None:
    """A rejected token is not echoed back in the error."""
    run = await provider.run("switch", "web", token="sekrit-value")
    assert "sekrit-value" not in run.err + run.out


async def test_provider_without_token_refuses_changes(
    aiohttp_server: ServerFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A provider started without a token answers 403; the CLI relays how to enable it."""
    provider = await start_provider(aiohttp_server, tmp_path, capsys, web_blue_green(), token=None)
    run = await provider.run("switch", "web")
    assert 4 == run.code
    assert run.err.startswith(
        "bluegreen switch: the provider refuses changes: switching is disabled because the "
        "provider has no token; start it with --token or BLUEGREEN_TOKEN"
    )


async def test_token_flag_works_with_a_one_line_warning(provider: Provider) -> None:
    """--token is still accepted, but says once on stderr that the environment or a file
    is safer; the token itself is not in the warning, and stdout stays clean."""
    run = await provider.run("switch", "web", "green", "--token", TOKEN, token=None)
    quiet = await provider.run("switch", "web", "blue")

    assert 0 == run.code, run.err
    assert [cli.TOKEN_FLAG_WARNING] == run.err.splitlines()
    assert TOKEN not in run.err + run.out
    assert "" == quiet.err


async def test_unreachable_provider_names_the_url(provider: Provider) -> None:
    """Nothing listening: exit 3, the URL tried, and how to point the CLI elsewhere."""
    url = f"http://127.0.0.1:{free_port()}"
    run = await provider.run("status", url=url)
    expected = (
        f"bluegreen status: cannot reach the provider at {url}: connection refused. "
        "Is `bluegreen serve` running there? Point the CLI at it with --url or BLUEGREEN_URL.\n"
    )
    assert (3, expected) == (run.code, run.err)


async def test_url_flag_beats_the_environment(provider: Provider) -> None:
    """--url overrides BLUEGREEN_URL."""
    bad = f"http://127.0.0.1:{free_port()}"
    run = await provider.run("status", "--url", provider.url, url=bad)
    assert 0 == run.code


async def test_something_else_at_the_url(
    aiohttp_server: ServerFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """An HTTP server that is not the provider: exit 3 and a hint to check --url."""

    async def page(request: web.Request) -> web.Response:
        return web.Response(text="<html>hello</html>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/status", page)
    server = await aiohttp_server(app)
    other = Provider(f"http://127.0.0.1:{server.port}", app, capsys)
    run = await other.run("status")
    expected = (
        f"bluegreen status: {other.url} does not answer like a bluegreen provider "
        "(GET /status answered 200 without JSON); check --url / BLUEGREEN_URL\n"
    )
    assert (3, expected) == (run.code, run.err)


async def test_bad_url_is_a_usage_error(provider: Provider) -> None:
    """A URL without http(s):// exits 2 with the expected shape."""
    run = await provider.run("status", url="127.0.0.1:8080")
    expected = (
        "bluegreen status: --url / BLUEGREEN_URL must look like http://HOST:PORT "
        "(got '127.0.0.1:8080')\n"
    )
    assert (2, expected) == (run.code, run.err)


async def test_compose_not_found(provider: Provider) -> None:
    """deploy with neither `docker compose` nor `docker-compose` on PATH: exit 7, install hint."""
    run = await provider.run("deploy", "web", "--image", "app:2")
    assert 7 == run.code
    assert run.err.startswith(
        "bluegreen deploy: Docker Compose not found: neither `docker compose` (v2 plugin) nor "
        "`docker-compose` (v1) is on PATH."
    )
    # The package names are the ones each distribution really has.
    assert "Debian and Ubuntu `apt-get install docker-compose`" in run.err
    assert "with Docker's own apt repository `apt-get install docker-compose-plugin`" in run.err


async def test_compose_override_not_found(provider: Provider) -> None:
    """A BLUEGREEN_COMPOSE naming no program is reported as such."""
    env: Mapping[str, str] = {
        "BLUEGREEN_URL": provider.url,
        "BLUEGREEN_COMPOSE": "no-such-compose",
        "PATH": "/nonexistent",
    }
    provider.capsys.readouterr()
    code = await asyncio.to_thread(cli.main, ["deploy", "web"], env)
    err = provider.capsys.readouterr().err
    assert 7 == code
    assert err.startswith("bluegreen deploy: BLUEGREEN_COMPOSE='no-such-compose' names no program")


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    """argparse errors (unknown color) exit 2 like every usage error."""
    with pytest.raises(SystemExit) as raised:
        cli.main(["switch", "web", "red"], {})
    assert 2 == raised.value.code
    assert "invalid choice: 'red'" in capsys.readouterr().err


def test_serve_is_still_there(capsys: pytest.CaptureFixture[str]) -> None:
    """`bluegreen serve` keeps its flags and its exit code 2 for bad settings."""
    code = cli.main(["serve", "--listen", "nope"], {})
    assert 2 == code
    assert capsys.readouterr().err.startswith("bluegreen serve: invalid --listen='nope'")


def test_module_entry_point_runs() -> None:
    """`python -m deploy.cli --help` documents the exit codes."""
    import subprocess

    result = subprocess.run(
        [sys.executable, "-m", "deploy.cli", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert 0 == result.returncode
    assert "exit codes: 0 done; 1 deploy/rollback failed" in result.stdout
