"""Settings precedence and validation; the state file's atomic round trip."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from provider import store
from provider.core import state_json, transitions
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


@pytest.mark.parametrize(
    ("how", "content"),
    [("flag", "s3cret\n"), ("env", "s3cret"), ("yaml", "s3cret\r\n")],
)
def test_tokens_from_files(tmp_path: Path, how: str, content: str) -> None:
    """--token-file, BLUEGREEN_TOKEN_FILE and token_file read the token, newline stripped;
    the provider token likewise."""
    (tmp_path / "op").write_text(content, newline="")
    (tmp_path / "tr").write_text("tr-token\n")
    op, tr = str(tmp_path / "op"), str(tmp_path / "tr")
    argv: list[str] = []
    env: dict[str, str] = {}
    if how == "flag":
        argv = ["--token-file", op, "--provider-token-file", tr]
    elif how == "env":
        env = {"BLUEGREEN_TOKEN_FILE": op, "BLUEGREEN_PROVIDER_TOKEN_FILE": tr}
    else:
        cfg = tmp_path / "bg.yml"
        cfg.write_text(f"token_file: {op}\nprovider-token-file: {tr}\n")
        argv = ["--config", str(cfg)]

    s = parse_args(argv, environ=env)

    assert ("s3cret", "tr-token") == (s.token, s.provider_token)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, r"token file '.*/op' \(--token-file; flag --token-file, .*\) does not exist"),
        ("dir", r"cannot read token file '.*/op' .*: Is a directory"),
        ("", "is empty; write the token into it"),
        ("\n", "is empty"),
        ("two words\n", "must not contain spaces or control characters"),
        ("x" * 5000, "is over 4096 bytes"),
        ("\udcff", "is not UTF-8 text"),
    ],
    ids=["missing", "unreadable", "empty", "only-newline", "space", "huge", "binary"],
)
def test_token_file_problems_say_what_to_fix(
    tmp_path: Path, content: str | None, message: str
) -> None:
    """A missing, unreadable, empty or malformed token file stops startup, naming the file
    and the flag, and never echoing the file's content."""
    path = tmp_path / "op"
    if content == "dir":
        path.mkdir()
    elif content == "\udcff":
        path.write_bytes(b"\xff\xfe")
    elif content is not None:
        path.write_text(content)

    with pytest.raises(SettingsError, match=message) as caught:
        parse_args(["--token-file", str(path)], environ={})

    assert "two words" not in str(caught.value) and "xxxx" not in str(caught.value)


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["--token", "a"], {"BLUEGREEN_TOKEN_FILE": "F"}, "both --token and BLUEGREEN_TOKEN_FILE"),
        (
            ["--provider-token-file", "F"],
            {"BLUEGREEN_PROVIDER_TOKEN": "a"},
            "both BLUEGREEN_PROVIDER_TOKEN and --provider-token-file",
        ),
    ],
)
def test_token_and_token_file_both_given_is_an_error(
    tmp_path: Path, argv: list[str], env: dict[str, str], message: str
) -> None:
    """A token and its file both given (from any source) is refused, not silently ranked."""
    token_file = tmp_path / "F"
    token_file.write_text("from-file\n")
    argv = [str(token_file) if a == "F" else a for a in argv]
    env = {k: str(token_file) if v == "F" else v for k, v in env.items()}

    with pytest.raises(SettingsError, match=message):
        parse_args(argv, environ=env)


def test_a_bad_token_value_is_not_echoed() -> None:
    """An invalid --token is reported without its value (it is a secret)."""
    with pytest.raises(SettingsError) as caught:
        parse_args(["--token", "has space"], environ={})

    assert "has space" not in str(caught.value) and "(hidden)" in str(caught.value)


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


# --- Pinned by mutation testing (docs/mutation.md) ---------------------------------------


def test_first_switch_of_an_unknown_service_round_trips(tmp_path: Path) -> None:
    """A switch of a service never adopted has no from/previous color and is first seen now."""
    path = tmp_path / "state.json"
    state, record = transitions.switch(
        State(), "web", Color.GREEN, reason="manual", actor="api", now=7.0
    )
    assert record is not None
    assert (None, None, 7.0) == (
        record.from_color,
        state.services["web"].previous,
        state.services["web"].first_seen,
    )
    assert None is state_json.record_doc(record)["from"]
    store.save(path, state)
    assert state == store.load(path)


def test_switch_keeps_first_seen_and_records_the_old_color() -> None:
    """Switching an adopted service keeps when it was first seen and remembers the old color."""
    state = transitions.adopt(State(), "web", Color.BLUE, 3.0)
    assert 3.0 == state.services["web"].first_seen
    state, record = transitions.switch(
        state, "web", Color.GREEN, reason="manual", actor="api", now=9.0
    )
    assert record is not None
    assert (Color.BLUE, Color.BLUE, 3.0) == (
        record.from_color,
        state.services["web"].previous,
        state.services["web"].first_seen,
    )


def test_state_file_without_first_seen_loads(tmp_path: Path) -> None:
    """A service entry without ``first_seen`` (older files) loads as seen since the epoch."""
    path = tmp_path / "state.json"
    path.write_text(
        '{"version": 1, "seq": 0, "services": {"web": {"active": "green"}}, "history": []}'
    )
    assert (Color.GREEN, 0.0) == (
        store.load(path).services["web"].active,
        store.load(path).services["web"].first_seen,
    )


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("[]", "top level is not an object"),
        ('{"version": 2}', "unsupported version 2"),
        ('{"version": 1, "seq": 1, "services": {}, "history": [7]}', "switch record is not"),
        ("{", "restore it from a backup or move it away to start with no state"),
    ],
)
def test_bad_state_file_message_names_the_file_and_the_problem(
    tmp_path: Path, content: str, needle: str
) -> None:
    """The startup error names the state file and what is wrong with it (or how to recover)."""
    path = tmp_path / "state.json"
    path.write_text(content)
    with pytest.raises(StateFileError) as raised:
        store.load(path)
    assert str(path) in str(raised.value)
    assert needle in str(raised.value)


def test_unreadable_state_file_message_names_the_file(tmp_path: Path) -> None:
    """A state path that cannot be read (here: a directory) stops the server, naming the path."""
    path = tmp_path / "state.json"
    path.mkdir()
    with pytest.raises(StateFileError, match=f"cannot read state file {path}"):
        store.load(path)


def test_save_creates_missing_parent_directories(tmp_path: Path) -> None:
    """The state file's directory is created, however deep, both at startup and on save."""
    path = tmp_path / "a" / "b" / "state.json"
    store.check_writable(path)
    assert path.parent.is_dir()
    deeper = tmp_path / "c" / "d" / "state.json"
    store.save(deeper, State(seq=3))
    assert State(seq=3) == store.load(deeper)


def test_save_failure_names_the_file(tmp_path: Path) -> None:
    """A write that fails is a ``StateFileError`` naming the state file."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    path = blocker / "state.json"
    with pytest.raises(StateFileError, match=f"cannot write state file {path}"):
        store.save(path, State())


def test_failed_replace_leaves_the_old_file_and_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the final rename fails, the old state stays and the temp file is removed."""
    path = tmp_path / "state.json"
    store.save(path, State(seq=1))
    replaced: list[Path] = []

    def failing_replace(src: str, dst: object) -> None:
        replaced.append(Path(src))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(StateFileError, match="No space left on device"):
        store.save(path, State(seq=2))
    assert [path.parent] == [p.parent for p in replaced]
    assert ["state.json"] == os.listdir(tmp_path)
    assert State(seq=1) == store.load(path)


def test_temp_file_is_a_hidden_sibling_of_the_state_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The new state is written beside the file (same filesystem, so the rename is atomic),
    under a hidden ``.state.json.*.tmp`` name that backups and globs can tell apart."""
    path = tmp_path / "state.json"
    sources: list[Path] = []
    real_replace = os.replace

    def spying_replace(src: str, dst: str) -> None:
        sources.append(Path(src))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spying_replace)
    store.save(path, State(seq=1))
    (src,) = sources
    assert (tmp_path, True, True) == (
        src.parent,
        src.name.startswith(".state.json."),
        src.name.endswith(".tmp"),
    )


def test_unwritable_state_dir_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A state directory without write permission fails at startup, naming the directory."""
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    with pytest.raises(StateFileError, match=f"state directory {tmp_path} is not writable"):
        store.check_writable(tmp_path / "state.json")
