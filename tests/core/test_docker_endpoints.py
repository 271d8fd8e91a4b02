"""The Docker endpoint table: what each mode needs, and the line a refusal becomes."""

from __future__ import annotations

from provider.core.docker_endpoints import ENDPOINTS, needed, refusal_message


def test_one_host_needs_reads_only() -> None:
    """Without --swarm every needed endpoint is a GET; --swarm adds exactly the config writes."""
    assert [] == [e.name for e in needed(swarm=False) if e.writes]
    assert ["POST /configs/create", "DELETE /configs/{name}"] == [
        e.name for e in needed(swarm=True) if e.writes
    ]
    assert ENDPOINTS == needed(swarm=True)


def test_a_refusal_names_the_endpoint_its_rule_and_the_tecnativa_setting() -> None:
    """One line per start, every refused endpoint in it, Swarm rules with their switch."""
    by_path = {e.path: e for e in ENDPOINTS}
    line = refusal_message(
        "tcp://proxy:2375",
        [(by_path["/events"], "no"), (by_path["/configs/create"], "refused\n")],
    )
    assert (
        "the Docker API at tcp://proxy:2375 (--docker-host / BLUEGREEN_DOCKER_HOST) refused "
        "what the provider needs: GET /events (follow container events; answer: 403 no); "
        "allow it in the proxy: rule events of deploy/socket-proxy/haproxy.cfg, or EVENTS=1 "
        "for tecnativa/docker-socket-proxy | POST /configs/create (commit a state version; "
        "answer: 403 refused); allow it in the proxy: rule configs_create of "
        "deploy/socket-proxy/haproxy.cfg with BLUEGREEN_PROXY_SWARM=1, or CONFIGS=1 and "
        "POST=1 for tecnativa/docker-socket-proxy"
    ) == line
