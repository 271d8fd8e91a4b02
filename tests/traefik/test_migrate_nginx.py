"""docs/migrate-nginx.md, followed: nginx's directives as the Traefik middlewares it maps them to.

No nginx runs: the guide replaces it. Each row of its table that needs a middleware is a
middleware in a small static file (``middlewares.yml``, read by Traefik's file provider
and never rewritten), referenced from the ``bluegreen.middlewares`` label; the rows that
need nothing (``proxy_buffer_size`` for big OAuth headers) are checked as such. Then the
first deploy, under load, through the same Traefik: 0 failed requests.
"""

from __future__ import annotations

import gzip
import http.client
import time
from pathlib import Path
from typing import Any

from tests.testbed.compose import APP_SCRIPT, ComposeFactory
from tests.testbed.containers import ContainerFactory
from tests.testbed.ports import LOOPBACK, free_port
from tests.testbed.provider import ProviderFactory
from tests.testbed.stack import Stack, body_of
from tests.testbed.traefik import TraefikFactory
from tests.traefik.layouts import tolerant
from tests.traefik.test_deploy import (
    V2_IMAGE,
    app_images,
    compose_factory,
    explain,
    wait_stably_serving,
)

__all__ = ["app_images", "compose_factory"]  # fixtures, re-used

#: The guide's middlewares.yml, as it shows it.
MIDDLEWARES = """\
http:
  middlewares:
    office-only:          # allow 127.0.0.1; deny all;
      ipAllowList:
        sourceRange: ["127.0.0.1/32"]
    nobody:               # deny all;
      ipAllowList:
        sourceRange: ["192.0.2.1/32"]
    body-limit:           # client_max_body_size 1k;
      buffering:
        maxRequestBodyBytes: 1024
    security-headers:     # add_header X-Frame-Options DENY;
      headers:
        customResponseHeaders:
          X-Frame-Options: DENY
    gzip:                 # gzip on; gzip_min_length 20;
      compress:
        minResponseBodyBytes: 20
"""

#: The app also serves a 2 KiB file and a CGI answering a 32 KiB header (an OAuth cookie),
#: copied from a read-only bind mount.
OAUTH_CGI = """#!/bin/sh
printf 'Content-Type: text/plain\\r\\nX-Big: %s\\r\\n\\r\\nok\\n' \\
  "$(head -c 32768 /dev/zero | tr '\\0' b)"
"""


def _extra_files(directory: Path) -> Path:
    (directory / "cgi-bin").mkdir(parents=True)
    (directory / "big.txt").write_text("a" * 2048)
    cgi = directory / "cgi-bin" / "oauth"
    cgi.write_text(OAUTH_CGI)
    cgi.chmod(0o755)
    return directory


def get(
    port: int, path: str, host: str, headers: dict[str, str] | None = None, body: bytes = b""
) -> tuple[int, dict[str, str], bytes]:
    """One request to Traefik's ``port``: status, lower-cased headers, body."""
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=10)
    try:
        method = "POST" if body else "GET"
        conn.request(method, path, body=body or None, headers={"Host": host, **(headers or {})})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def test_the_nginx_guide_maps_each_directive_and_deploys_under_load(
    provider_factory: ProviderFactory,
    traefik_factory: TraefikFactory,
    compose_factory: ComposeFactory,
    containers: ContainerFactory,
    app_images: dict[str, str],
    tmp_path: Path,
    capsys: Any,
) -> None:
    """Every middleware row of the guide's table acts through Traefik; so do the rows that
    need none; the first deploy through it fails no request."""
    provider = provider_factory.start(label_prefix="bgnginx", promote_after=0.5)
    middlewares = tmp_path / "middlewares.yml"
    middlewares.write_text(MIDDLEWARES)
    plain = free_port()
    traefik = traefik_factory.start(
        http_endpoint=provider.traefik_endpoint, file_path=middlewares, log_level="INFO",
        extra_args=[  # listen 80; return 301 https://$host$request_uri;
            f"--entryPoints.plain.address={LOOPBACK}:{plain}",
            "--entryPoints.plain.http.redirections.entryPoint.to=web",
            "--entryPoints.plain.http.redirections.entryPoint.scheme=https",
        ],
    )  # fmt: skip
    project = compose_factory.create()
    chain = "office-only@file,body-limit@file,security-headers@file,gzip@file"
    for service, used in (("web", chain), ("admin", "nobody@file")):
        project.add_app(
            prefix="bgnginx", service=service, default_image=app_images["v1"],
            owner=containers.owner, extra_labels={"bgnginx.middlewares": used},
        )  # fmt: skip
    extra = _extra_files(tmp_path / "extra")
    for definition in map(tolerant, project.services.values()):
        copy = "cp -r /srv/extra/. /tmp/www/\nexec httpd"
        definition["command"][-1] = APP_SCRIPT.replace("exec httpd", copy)
        definition["volumes"] = [f"{extra}:/srv/extra:ro"]
    project.write()
    project.up("web-blue", "admin-blue")
    provider.wait_active("web", "blue")
    project.up("web-green")
    provider.wait_active("web", "green")
    assert 200 == provider.switch("web", "blue").status
    provider.wait_active("web", "blue")
    stack = Stack(provider, traefik, containers)
    wait_stably_serving(stack, "blue")
    port = traefik.web_port

    status, headers, body = get(port, "/", "web.test")
    assert (200, b"blue\n", "DENY") == (status, body, headers.get("x-frame-options"))
    assert 413 == get(port, "/", "web.test", body=b"x" * 2048)[0]  # client_max_body_size 1k
    status, headers, body = get(port, "/big.txt", "web.test", {"Accept-Encoding": "gzip"})
    assert (200, "gzip") == (status, headers.get("content-encoding"))
    assert b"a" * 2048 == gzip.decompress(body)
    status, headers, _ = get(port, "/cgi-bin/oauth", "web.test")
    assert (200, 32768) == (status, len(headers.get("x-big", "")))  # proxy_buffer_size: nothing
    assert 403 == get(port, "/", "admin.test")[0]  # deny all
    status, _, body = get(port, "/", "web.test", {"X-Bluegreen-Color": "green"})
    assert (200, b"green\n") == (status, body)  # location /green: the preview header
    status, headers, _ = get(plain, "/path?q=1", "web.test")
    assert (301, f"https://web.test:{port}/path?q=1") == (status, headers.get("location"))

    with stack.load(concurrency=8, max_duration=120.0) as load:
        load.wait_requests(50, timeout=10)
        deployed = project.bluegreen(
            "deploy", "web", *project.compose_args(), "--image", V2_IMAGE, "--drain", "2",
            url=provider.url, token=provider.token, timeout=180,
        )  # fmt: skip
        assert 0 == deployed.returncode, explain(deployed)
        done = time.monotonic()
        load.wait_for("2 s after the deploy",
                      lambda s: bool(s) and s[-1].start > done + 2.0, timeout=15)  # fmt: skip
    summary = load.result.summary()
    with capsys.disabled():
        print(f"\nfirst deploy after the nginx migration: {summary.format()}")
    assert [] == [s.describe() for s in load.result.failures()[:20]], summary.format()
    assert {body_of("blue"), body_of("green")} == set(load.result.bodies()), summary.format()
    assert summary.total > 200, summary.format()
