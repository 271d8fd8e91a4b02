"""``deploy/socket-proxy/haproxy.cfg`` holds one rule per row of the provider's endpoint table.

The real proxy is exercised in tests/engine/test_socket_proxy.py; this reads the file and
pins that its rules and the table (which names them in refusal messages and docs) agree:
the same names, methods, Swarm-only flags, and paths each rule's pattern accepts.
"""

from __future__ import annotations

import re

from provider.core.docker_endpoints import ENDPOINTS, PROXY_CONFIG
from tests.testbed.socket_proxy import CONFIG

RULE = re.compile(r"^\s*# rule (\w+):")
PATTERN = re.compile(r"\{ path -m reg (\S+) \}")
METHODS = {"METH_GET": "GET", "METH_POST": "POST", "METH_DELETE": "DELETE"}


def rules() -> dict[str, str]:
    """Each ``# rule NAME:`` comment's following ``http-request allow`` line, by name."""
    lines = CONFIG.read_text().splitlines()
    found = {}
    for index, line in enumerate(lines):
        if match := RULE.match(line):
            found[match.group(1)] = lines[index + 1].strip()
    return found


def concrete(path: str) -> str:
    return path.replace("{id}", "3f2a9c").replace("{name}", "bluegreen-state-7")


def test_the_table_names_the_shipped_file() -> None:
    """Refusal messages point at the file the examples mount."""
    assert CONFIG.as_posix().endswith(PROXY_CONFIG)


def test_every_rule_is_one_row_of_the_table() -> None:
    """Same rule names; each line allows the row's method (GET also HEAD for _ping only),
    only in Swarm mode for Swarm rows, and nothing but ``allow`` lines follow the comments."""
    shipped = rules()
    assert sorted(e.rule for e in ENDPOINTS) == sorted(shipped)
    for endpoint in ENDPOINTS:
        line = shipped[endpoint.rule]
        assert line.startswith("http-request allow if "), line
        methods = {name for token, name in METHODS.items() if token in line}
        if "{ method GET HEAD }" in line:
            methods |= {"GET", "HEAD"}
        expected = {"GET", "HEAD"} if endpoint.path == "/_ping" else {endpoint.method}
        assert expected == methods, line
        assert endpoint.swarm == ("swarm_mode" in line), line


def test_each_rule_matches_its_path_exactly() -> None:
    """With or without /v1.xx, the path and nothing longer, shorter or a sibling."""
    shipped = rules()
    for endpoint in ENDPOINTS:
        pattern = PATTERN.search(shipped[endpoint.rule])
        assert pattern is not None, shipped[endpoint.rule]
        regex = re.compile(pattern.group(1))
        path = concrete(endpoint.path)
        assert regex.search(path) and regex.search(f"/v1.43{path}"), endpoint
        wrongs = [f"{path}/x", f"/x{path}"]
        if "{" not in endpoint.path:  # a name may be anything, a fixed path is that path
            wrongs += [f"{path}x", path.rsplit("/", 1)[0] + "/create"]
        for wrong in wrongs:
            assert not regex.search(wrong) or wrong == path, (endpoint, wrong)
        if "{" in endpoint.path:
            assert not regex.search(endpoint.path.replace("{id}", "..").replace("{name}", ".."))
