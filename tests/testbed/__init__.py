"""Shared integration-test infrastructure.

The integration tier runs against a real Docker Engine and the real Traefik
binary (see STYLE.md, "Tests").  Each piece lives in its own small module so a
test can pick only what it needs:

- ``tools``: locating external binaries; fail in CI, skip elsewhere.
- ``ports``: free loopback ports.
- ``dockerd``: a private ``dockerd`` per test session.
- ``images``: the locally built busybox image and the backend command.
- ``containers``: labelled test containers that are always removed.
- ``traefik``: a real Traefik process with its API on loopback.
- ``compose``: compose projects of blue/green busybox apps run by ``docker-compose``.
"""
