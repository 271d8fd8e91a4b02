"""``--gate-url`` and ``--gate-timeout`` (env, flag): checked at startup, never logged whole,
and the default gate of every service's labels."""

from __future__ import annotations

import pytest

from provider.errors import SettingsError
from provider.settings import parse_args

HOOK = "https://ci.example/gate/s3cret?token=t0ken"


def test_the_gate_url_reaches_every_services_labels_and_is_logged_redacted() -> None:
    settings = parse_args(["--gate-url", HOOK, "--gate-timeout", "2.5"], environ={})
    assert (HOOK, 2.5) == (settings.gate_url, settings.gate_timeout)
    assert HOOK == settings.options.labels.gate_url
    logged = settings.redacted()["gate_url"]
    assert "s3cret" not in logged and "t0ken" not in logged, logged
    assert "s3cret" not in repr(settings)


def test_the_env_sets_it_and_the_default_is_none() -> None:
    assert None is parse_args([], environ={}).gate_url
    assert HOOK == parse_args([], environ={"BLUEGREEN_GATE_URL": HOOK}).gate_url


@pytest.mark.parametrize("raw", ["ci.example/gate", "ftp://ci.example/", "http://x:70000/"])
def test_a_gate_url_that_is_no_http_url_is_refused(raw: str) -> None:
    with pytest.raises(SettingsError, match="gate"):
        parse_args(["--gate-url", raw], environ={})


def test_a_gate_timeout_must_be_positive() -> None:
    with pytest.raises(SettingsError, match="gate-timeout"):
        parse_args(["--gate-timeout", "0"], environ={})
