"""Settings precedence and validation; the state file's atomic round trip."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from provider import store
from provider.core import transitions
from provider.core.model import Color, State
from provider.errors import SettingsError, StateFileError
from provider.settings import Settings, parse_args


def test_defaults() -> None:
    """With nothing given, the documented defaults apply."""
    s = parse_args([], environ={})
    assert (
        s.listen_host,
        s.listen_port,
        s.label_prefix,
        s.entrypoints,
    ) == ("0.0.0.0", 8080, "bluegreen", ("web",))
    assert (
        s.token,
        s.provider_token,
        s.promote_after,
        s.rollback_after,
        s.auto_promote,
        s.auto_rollback,
    ) == (None, None, 1.0, 5.0, True, True)


def test_precedence_flag_over_env_over_file(tmp_path: Path) -> None:
    """Flag beats BLUEGREEN_* env, env beats the YAML file, the file beats defaults."""
    cfg = tmp_path / "bg.yml"
    cfg.write_text(
        "listen: 127.0.0.1:7000\nlabel-prefix: fromfile\nentrypoints: [a, b]\n"
        "preview_header: X-From-File\nauto_promote: false\n"
    )
    env = {"BLUEGREEN_LABEL_PREFIX": "fromenv", "BLUEGREEN_LISTEN": "127.0.0.1:7001"}
    s = parse_args(["--config", str(cfg), "--listen", "127.0.0.1:7002"], environ=env)
    assert (s.listen_host, s.listen_port) == ("127.0.0.1", 7002)
    assert s.label_prefix == "fromenv"
    assert s.entrypoints == ("a", "b")
    assert s.preview_header == "X-From-File"
    assert s.auto_promote is False


def test_docker_host_from_docker_host_env() -> None:
    """The Docker address defaults to $DOCKER_HOST; BLUEGREEN_DOCKER_HOST wins over it."""
    assert parse_args([], environ={"DOCKER_HOST": "unix:///a"}).docker_host == "unix:///a"
    assert (
        parse_args(
            [], environ={"DOCKER_HOST": "unix:///a", "BLUEGREEN_DOCKER_HOST": "unix:///b"}
        ).docker_host
        == "unix:///b"
    )


def test_no_auto_flags() -> None:
    """--no-auto-promote and --no-auto-rollback turn the watcher's switches off."""
    s = parse_args(["--no-auto-promote", "--no-auto-rollback"], environ={})
    assert (s.auto_promote, s.auto_rollback) == (False, False)


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["--listen", "nope"], {}, "--listen"),
        ([], {"BLUEGREEN_LISTEN": "1.2.3.4:99999"}, "BLUEGREEN_LISTEN"),
        (["--promote-after", "soon"], {}, "--promote-after"),
        (["--log-format", "xml"], {}, "expected one of auto, json, console"),
        (["--entrypoints", "a b"], {}, "comma list"),
        (["--token", "has space"], {}, "--token"),
        (["--history-limit", "0"], {}, "above 0"),
    ],
)
def test_invalid_settings_say_what_to_fix(
    argv: list[str], env: dict[str, str], message: str
) -> None:
    """A bad value names the flag or env var and what is expected."""
    with pytest.raises(SettingsError, match=message):
        parse_args(argv, environ=env)


def test_settings_file_errors(tmp_path: Path) -> None:
    """Unknown keys and unreadable files stop startup with a message."""
    cfg = tmp_path / "bg.yml"
    cfg.write_text("lisen: 1\n")
    with pytest.raises(SettingsError, match="unknown setting 'lisen'"):
        parse_args(["--config", str(cfg)], environ={})
    with pytest.raises(SettingsError, match="cannot read settings file"):
        parse_args(["--config", str(tmp_path / "missing.yml")], environ={})


def test_redacted_never_shows_tokens() -> None:
    """Settings logged at startup say only whether tokens are set."""
    text = json.dumps(Settings(token="t0p", provider_token="pp").redacted())
    assert "t0p" not in text and '"token": "set"' in text


def test_state_round_trip_and_bounded_history(tmp_path: Path) -> None:
    """Switches survive a save/load; history keeps the newest N."""
    path = tmp_path / "s" / "state.json"
    state = transitions.adopt(State(), "web", Color.BLUE, 5.0)
    for i in range(5):
        state, _ = transitions.switch(
            state,
            "web",
            Color.GREEN if i % 2 == 0 else Color.BLUE,
            reason="manual",
            actor="api",
            now=10.0 + i,
            history_limit=3,
        )
    store.save(path, state)
    loaded = store.load(path)
    assert state == loaded
    assert [r.seq for r in loaded.history] == [3, 4, 5]
    assert (
        loaded.services["web"].active,
        loaded.services["web"].previous,
    ) == (Color.GREEN, Color.BLUE)
    assert [p for p in os.listdir(path.parent) if p.endswith(".tmp")] == []


def test_switch_to_active_color_records_nothing() -> None:
    """Switching to the color already active is not a switch."""
    state = transitions.adopt(State(), "web", Color.BLUE, 1.0)
    again, record = transitions.switch(state, "web", Color.BLUE, reason="m", actor="a", now=2.0)
    assert (state, None) == (again, record)


def test_missing_state_file_is_empty(tmp_path: Path) -> None:
    """No file yet: no state (each service starts from its routable color)."""
    assert State() == store.load(tmp_path / "none.json")


@pytest.mark.parametrize(
    "content",
    [
        "",
        "[]",
        '{"version": 2}',
        '{"version": 1, "seq": 0, "services": {"w": {"active": "red"}}, "history": []}',
    ],
)
def test_bad_state_file_is_an_error(tmp_path: Path, content: str) -> None:
    """Anything but a valid state document refuses to load."""
    path = tmp_path / "state.json"
    path.write_text(content)
    with pytest.raises(StateFileError):
        store.load(path)


def test_unwritable_state_dir_fails_at_start(tmp_path: Path) -> None:
    """The server checks it can write its state before serving."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StateFileError, match="cannot create state directory"):
        store.check_writable(blocker / "sub" / "state.json")


def test_marks_round_trip_sorted_and_byte_stable(tmp_path: Path) -> None:
    """Marks and the switch anchor survive a save/load; the file lists colors sorted and
    two saves of the same state are byte-identical."""
    path = tmp_path / "state.json"
    state = transitions.adopt(State(), "web", Color.BLUE, 5.0)
    state, _ = transitions.switch(
        state, "web", Color.GREEN, reason="manual", actor="api", now=10.0, anchor=11.0
    )
    state, _ = transitions.switch(
        state, "web", Color.BLUE, reason="rollback", actor="api", now=20.0, reject_left=True
    )
    state = transitions.retire(state, "api", Color.GREEN, since=30.0, reason="retired by api")
    state = transitions.retire(state, "api", Color.BLUE, since=31.0, reason="retired by api")

    store.save(path, state)
    first = path.read_bytes()
    loaded = store.load(path)
    store.save(path, loaded)

    assert state == loaded
    assert first == path.read_bytes()
    doc = json.loads(first)
    assert ["blue", "green"] == list(doc["services"]["api"]["marks"])
    assert {"kind": "rejected", "since": 20.0, "reason": "rollback"} == doc["services"]["web"][
        "marks"
    ]["green"]
    assert 20.0 == loaded.services["web"].anchor


def test_a_state_file_without_marks_still_loads(tmp_path: Path) -> None:
    """A file written before marks and anchors existed loads with none (old anchors then
    come from the last switch's time)."""
    path = tmp_path / "state.json"
    record = {
        "service": "web",
        "from": "blue",
        "to": "green",
        "reason": "manual",
        "actor": "api",
        "at": 10.0,
        "seq": 1,
    }
    old = {
        "version": 1,
        "seq": 1,
        "services": {
            "web": {"active": "green", "previous": "blue", "first_seen": 5.0, "last_switch": record}
        },
        "history": [record],
    }
    path.write_text(json.dumps(old))

    loaded = store.load(path).services["web"]

    assert ({}, None, Color.GREEN) == (dict(loaded.marks), loaded.anchor, loaded.active)
