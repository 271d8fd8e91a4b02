"""End-to-end harness: load generation, the provider as a process, the full stack.

Reusable by ``bench/`` as well as the tests:

- ``load``: a bounded async load generator (aiohttp) that records every
  response, plus a thread wrapper so synchronous code can keep it running.
- ``provider``: ``bluegreen serve`` as a subprocess that can be SIGKILLed and
  restarted on the same state file and port.
- ``stack``: Traefik (HTTP provider polling the provider) + provider + labelled
  busybox backends on one private Docker daemon.
- ``fixtures``: the pytest fixtures (``provider_factory``, ``stack_factory``,
  ``stack``), registered through ``tests/conftest.py``'s ``pytest_plugins``.
"""
