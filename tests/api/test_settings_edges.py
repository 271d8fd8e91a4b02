"""Settings at their edges: zero, NaN and huge numbers; YAML values read as the text written;
URLs with credentials in what is logged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import structlog

from provider import logs
from provider.errors import SettingsError
from provider.settings import Settings, parse_args

#: Seconds that are a loop's period or a timeout: 0 would spin, or never time out.
PERIODS = ["--resync-interval", "--events-heartbeat", "--webhook-timeout", "--swarm-poll"]
#: Seconds where 0 means "at once" or "off".
DELAYS = ["--promote-after", "--rollback-after", "--hold"]
COUNTS = [
    "--history-limit",
    "--max-body",
    "--events-buffer",
    "--events-max-clients",
    "--webhook-queue",
    "--swarm-keep",
]


@pytest.mark.parametrize("flag", PERIODS)
@pytest.mark.parametrize("raw", ["0", "0s", "0.0", "0.001", "-1", "nan", "inf", "1e999", "86401"])
def test_a_period_must_be_positive_and_finite(flag: str, raw: str) -> None:
    """``--swarm-poll 0`` (a busy loop), ``--webhook-timeout 0`` (no timeout at all) and
    their kin are refused, as are NaN and infinity, naming the flag and its env var."""
    env_name = "BLUEGREEN_" + flag.removeprefix("--").replace("-", "_").upper()
    with pytest.raises(SettingsError, match=f"\\(flag {flag}, env {env_name}\\)"):
        parse_args([flag, raw], environ={})


@pytest.mark.parametrize("flag", PERIODS + DELAYS)
def test_every_seconds_setting_takes_a_fraction(flag: str) -> None:
    """A period may be short (0.5 s) and a delay may be 0 (promote at once, hold off)."""
    name = flag.removeprefix("--").replace("-", "_")
    value = "0" if flag in DELAYS else "0.5"
    assert float(value) == getattr(parse_args([flag, value], environ={}), name)


@pytest.mark.parametrize("flag", DELAYS)
@pytest.mark.parametrize("raw", ["-1", "nan", "inf", "-inf"])
def test_a_delay_is_never_negative_nor_infinite(flag: str, raw: str) -> None:
    """Delays are refused below 0 and when not finite."""
    with pytest.raises(SettingsError, match=flag):
        parse_args([flag, raw], environ={})


@pytest.mark.parametrize("flag", COUNTS)
@pytest.mark.parametrize("raw", ["0", "-3", "1e3", "99999999999999999999"])
def test_a_count_is_a_whole_number_of_sane_size(flag: str, raw: str) -> None:
    """Counts are whole numbers from 1 to 10^9 (10^20 events would not fit a buffer)."""
    with pytest.raises(SettingsError, match=flag):
        parse_args([flag, raw], environ={})


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--history-limit", "ten"], "expected a whole number above 0"),
        (["--canary-max-extensions", "1e3"], "expected a whole number between 0 and 100"),
        (["--promote-after", "soon"], "expected seconds between 0 and 86400"),
        (["--swarm-poll", "1m"], "expected seconds between 0.01 and 86400"),
    ],
)
def test_a_number_that_does_not_parse_says_what_is_expected(argv: list[str], message: str) -> None:
    """Not Python's "invalid literal for int() with base 10": what the setting takes."""
    with pytest.raises(SettingsError, match=message):
        parse_args(argv, environ={})


def config(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "bg.yml"
    path.write_text(text)
    return ["--config", str(path)]


def test_yaml_values_are_the_text_written(tmp_path: Path) -> None:
    """YAML 1.1 reads ``0755`` as 493, ``12:30`` as 750 and ``yes`` as true: a token, a secret
    or a name is the text the operator wrote instead, quoted or not."""
    s = parse_args(
        config(
            tmp_path,
            "token: 0755\nprovider_token: 12:30\nwebhook_secret: 0x1F\nlabel_prefix: 0755\n"
            "canary_cookie: yes\nwebhooks:\n  - url: http://127.0.0.1:9/x\n    secret: 1_000\n",
        ),
        environ={},
    )
    assert ("0755", "12:30", "0x1F", "0755", "yes", "1_000") == (
        s.token,
        s.provider_token,
        s.webhook_secret,
        s.label_prefix,
        s.canary_cookie,
        s.webhooks[0].secret,
    )


def test_yaml_numbers_booleans_lists_and_nulls_still_work(tmp_path: Path) -> None:
    """Each setting's parser reads its text: numbers, true/false words (``off`` too), the
    entrypoints list; an empty value or ``null`` is unset."""
    s = parse_args(
        config(
            tmp_path,
            "promote_after: 1.5\nhistory_limit: 20\nauto_promote: off\nui: no\nswarm: yes\n"
            "entrypoints: [web, websecure]\ntoken: ~\ntraefik_metrics_url:\n",
        ),
        environ={},
    )
    assert (1.5, 20, False, False, True, ("web", "websecure"), None, None) == (
        s.promote_after,
        s.history_limit,
        s.auto_promote,
        s.ui,
        s.swarm,
        s.entrypoints,
        s.token,
        s.traefik_metrics_url,
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("token: {a: 1}\n", "token must be one value, not a mapping"),
        ("token: [a, b]\n", "token must be one value, not a list"),
        ("history_limit: 0x10\n", "history_limit in .*: expected a whole number"),
        ("swarm_poll: 0\n", "swarm_poll in .*: expected seconds between 0.01 and 86400"),
    ],
)
def test_yaml_values_of_the_wrong_shape_are_refused(
    tmp_path: Path, text: str, message: str
) -> None:
    """A mapping or a list where one value belongs is refused (it used to become the token
    ``{'a': 1}``); so are a hex count and a zero period."""
    with pytest.raises(SettingsError, match=message):
        parse_args(config(tmp_path, text), environ={})


def test_logged_settings_show_no_url_credentials() -> None:
    """The settings ``provider_starting`` logs show the metrics URL and the Docker host
    without their ``user:password@`` (the path stays: it is no secret there)."""
    s = parse_args(
        [
            "--traefik-metrics-url",
            "http://prom:hunter2@127.0.0.1:8082/metrics",
            "--docker-host",
            "tcp://admin:hunter3@127.0.0.1:2375",
        ],
        environ={},
    )
    shown = s.redacted()
    assert (
        "http://***@127.0.0.1:8082/metrics",
        "tcp://***@127.0.0.1:2375/",
    ) == (shown["traefik_metrics_url"], shown["docker_host"])
    assert "hunter" not in json.dumps(shown)
    assert "unix:///var/run/docker.sock" == Settings().redacted()["docker_host"]


@pytest.mark.parametrize(
    ("url", "path", "shown"),
    [
        ("https://h.test/hooks/T0KEN?x=1", False, "https://h.test/…"),
        ("https://h.test/hooks/T0KEN?x=1", True, "https://h.test/hooks/T0KEN?…"),
        ("http://u:p@[::1]:81/m#f", True, "http://***@[::1]:81/m?…"),
        ("http://u@h", False, "http://***@h/…"),
        ("http://h:99999/x", False, "(malformed URL)"),
    ],
)
def test_redact_url(url: str, path: bool, shown: str) -> None:
    """The one helper for logged URLs: never userinfo, query or fragment; the path on request."""
    assert shown == logs.redact_url(url, path=path)


def test_the_log_pipeline_masks_url_credentials_anywhere(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Whatever a caller logs (an error naming a URL, nested settings, a traceback), the
    configured JSON lines carry no ``user:password@`` of a URL."""
    logs.configure("json", "info")
    try:
        log = structlog.get_logger("test_settings_edges")
        log.warning("scrape_failed", error="404, url='http://prom:hunter2@127.0.0.1:9/metrics'")
        log.info("nested", settings={"urls": ["tcp://admin:hunter3@h:2375"]})
        try:
            raise ValueError("cannot reach https://bob:hunter4@h.test/x")
        except ValueError:
            log.exception("failed")
    finally:
        structlog.reset_defaults()
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]

    assert ["scrape_failed", "nested", "failed"] == [line["event"] for line in lines]
    assert "404, url='http://***@127.0.0.1:9/metrics'" == lines[0]["error"]
    assert [] == [n for n in ("hunter2", "hunter3", "hunter4") if n in json.dumps(lines)]
