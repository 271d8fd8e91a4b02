"""A bounded HTTP load generator meant to run INSIDE a network namespace.

The Swarm tests' Traefik runs in a container on a node of the private cluster,
and its ``web`` entrypoint is on that container's own loopback: only a process
in that namespace can reach it while obeying the network rule (loopback and
the test's own namespaces only).  So this is a script, started with
``nsenter --net=PATH python3 -m tests.testbed.netns_load --url ... --host ...``,
using nothing but the standard library.

Workers send GETs back to back over keep-alive connections until the first of:
``--max-requests`` sent, ``--max-seconds`` passed, SIGTERM/SIGINT.  Then it
prints ONE JSON line: totals, statuses, errors and the count of each response
body (the test app answers its color), so a test can prove "0 failed" and see
where traffic went.  :func:`result_from_output` parses that line.
"""

from __future__ import annotations

import argparse
import http.client
import json
import signal
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

DEFAULT_TIMEOUT_S = 5.0
BODY_CHARS = 200


@dataclass(frozen=True)
class LoadResult:
    """Totals of one run; ``failed`` counts everything that is not an HTTP 200."""

    total: int
    ok: int
    failed: int
    duration: float
    statuses: dict[str, int]
    errors: dict[str, int]
    bodies: dict[str, int]
    stopped_by: str

    @property
    def rps(self) -> float:
        """Requests per second over the whole run."""
        return self.total / self.duration if self.duration > 0 else 0.0


class _Tally:
    """Counters shared by the workers, under one lock."""

    def __init__(self, max_requests: int, body_chars: int) -> None:
        self.lock = threading.Lock()
        self.body_chars = body_chars
        self.max_requests = max_requests
        self.sent = 0
        self.ok = 0
        self.statuses: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.bodies: Counter[str] = Counter()

    def claim(self) -> bool:
        """Reserve one request of the budget; False once it is spent."""
        with self.lock:
            if self.sent >= self.max_requests:
                return False
            self.sent += 1
            return True

    def record(self, status: int | None, body: str, error: str | None) -> None:
        with self.lock:
            if error is not None:
                self.errors[error] += 1
                return
            self.statuses[str(status)] += 1
            self.bodies[body[: self.body_chars]] += 1
            if status == 200:
                self.ok += 1


def _worker(
    url: str, host: str | None, timeout: float, tally: _Tally, stop: threading.Event
) -> None:
    parts = urlsplit(url)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    port = parts.port or 80
    headers = {"Host": host} if host else {}
    conn: http.client.HTTPConnection | None = None
    while not stop.is_set() and tally.claim():
        if conn is None:
            conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", port, timeout=timeout)
        try:
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            body = response.read().decode("utf-8", errors="replace")
        except (OSError, http.client.HTTPException) as exc:
            tally.record(None, "", type(exc).__name__)
            conn.close()
            conn = None
            continue
        tally.record(response.status, body, None)
        if response.will_close:
            conn.close()
            conn = None
    if conn is not None:
        conn.close()


def run(
    url: str,
    *,
    host: str | None,
    max_requests: int,
    max_seconds: float,
    concurrency: int,
    timeout: float = DEFAULT_TIMEOUT_S,
    body_chars: int = BODY_CHARS,
) -> dict[str, Any]:
    """Send the bounded load and return the JSON-able summary (bodies cut at ``body_chars``)."""
    tally = _Tally(max_requests, body_chars)
    stop = threading.Event()
    stopped_by = ["done"]

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stopped_by[0] = signal.Signals(signum).name
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    workers = [
        threading.Thread(target=_worker, args=(url, host, timeout, tally, stop), daemon=True)
        for _ in range(max(1, concurrency))
    ]
    start = time.monotonic()
    for worker in workers:
        worker.start()
    deadline = start + max_seconds
    while any(worker.is_alive() for worker in workers):
        if stop.wait(0.05):
            break
        if time.monotonic() >= deadline:
            stopped_by[0] = "time"
            stop.set()
    for worker in workers:
        # A request in flight finishes within its own timeout.
        worker.join(timeout + 1.0)
    duration = time.monotonic() - start
    with tally.lock:
        total = sum(tally.statuses.values()) + sum(tally.errors.values())
        return {
            "total": total,
            "ok": tally.ok,
            "failed": total - tally.ok,
            "duration": round(duration, 3),
            "statuses": dict(tally.statuses),
            "errors": dict(tally.errors),
            "bodies": dict(tally.bodies),
            "stopped_by": stopped_by[0],
        }


def result_from_output(stdout: str) -> LoadResult:
    """The :class:`LoadResult` in the last JSON line the script printed."""
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise ValueError(f"no result line in load output: {stdout[-500:]!r}")
    data = json.loads(lines[-1])
    return LoadResult(
        total=data["total"],
        ok=data["ok"],
        failed=data["failed"],
        duration=data["duration"],
        statuses=data["statuses"],
        errors=data["errors"],
        bodies=data["bodies"],
        stopped_by=data["stopped_by"],
    )


def main(argv: list[str] | None = None) -> int:
    """Parse the bounds, run, print the one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--url", required=True)
    parser.add_argument("--host", default=None, help="Host header")
    parser.add_argument("--max-requests", type=int, required=True)
    parser.add_argument("--max-seconds", type=float, required=True)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S)
    parser.add_argument("--body-chars", type=int, default=BODY_CHARS, help="bodies kept up to")
    args = parser.parse_args(argv)
    summary = run(
        args.url,
        host=args.host,
        max_requests=args.max_requests,
        max_seconds=args.max_seconds,
        concurrency=args.concurrency,
        timeout=args.timeout,
        body_chars=args.body_chars,
    )
    sys.stdout.write(json.dumps(summary, sort_keys=True) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
