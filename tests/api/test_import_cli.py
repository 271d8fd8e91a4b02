"""``bluegreen import traefik-file`` as a user runs it: streams, exit codes, messages."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from deploy import cli

DATA = Path(__file__).resolve().parents[1] / "data" / "traefik_file"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(["import", "traefik-file", *argv], {})
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_an_override_to_redirect_into_a_file(capsys: pytest.CaptureFixture[str]) -> None:
    """stdout is a valid compose file (the flags as comments); the notes go to stderr."""
    code, out, err = run(capsys, str(DATA / "router-switch-green.yml"), "--format",
                         "compose-override")  # fmt: skip
    assert 0 == code, err
    doc = yaml.safe_load(out)
    assert ["web-server-blue", "web-server-green"] == sorted(doc["services"])
    assert "#   add     --providers.http.endpoint=http://bluegreen:8080/traefik\n" in out
    assert err.splitlines() == [
        "note: web-server: green is live now (router web-server)",
        "note: web-server: the provider adopts blue when it first sees both colors ready: "
        "once it runs, `bluegreen switch web-server green` keeps green live",
        f"imported 1 service(s) from {DATA / 'router-switch-green.yml'}: web-server",
    ]


@pytest.mark.parametrize(
    ("argv", "code", "last_line"),
    [
        (["no-colors.yml"], 1, "bluegreen import: nothing imported from {d}/no-colors.yml: "
         "no router points at a service named <name>-blue or <name>-green, at a weighted "
         "service over two such, or at servers whose host names a color"),
        (["bad-rule.yml"], 1, "bluegreen import: nothing imported from {d}/bad-rule.yml: every "
         "blue/green router has a problem (above)"),
        (["first-run.yml"], 2, "bluegreen import: {d}/first-run.yml is not YAML: while scanning "
         "a double-quoted scalar in \"<byte string>\", line 6, column 13: rule: "
         "\"Host($DOMAIN\\)\" ^ found unknown escape character ')' in \"<byte string>\", line "
         "6, column 27: rule: \"Host($DOMAIN\\)\" ^"),
        (["absent.yml"], 2, "bluegreen import: cannot read {d}/absent.yml: No such file or "
         "directory"),
        (["loopback.yml", "--format", "compose-override"], 2, "bluegreen import: web blue: "
         "http://127.0.0.1:8081 names an address, not a compose service: pass "
         "--compose-service (e.g. '{{service}}-{{color}}') to name them"),
        (["loopback.yml", "--compose-service", "{colour}"], 2, "bluegreen import: "
         "--compose-service '{{colour}}' may use only {{service}} and {{color}}"),
    ],
)  # fmt: skip
def test_nothing_imported_or_unreadable_exits_non_zero(
    capsys: pytest.CaptureFixture[str], argv: list[str], code: int, last_line: str
) -> None:
    """1: nothing could be imported (reasons above); 2: the file or the flags are wrong."""
    got, out, err = run(capsys, str(DATA / argv[0]), *argv[1:])
    assert (code, "", last_line.format(d=DATA)) == (got, out, err.splitlines()[-1])
