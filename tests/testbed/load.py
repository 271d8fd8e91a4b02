"""A bounded async load generator that records every response.

``concurrency`` workers share one aiohttp session (keep-alive connections, as a
real client would use) and send GETs back to back until the first of: the
caller stops them, ``max_duration`` seconds pass, or ``max_requests`` requests
were sent.  Every request becomes a :class:`Sample` with its status, body,
start and end on the monotonic clock, the wall-clock start, and the exception
class name when the connection failed or timed out.  Nothing is dropped, so a
test can prove "not one request failed" and find the instant traffic moved.

:class:`BackgroundLoad` runs the generator on its own event loop in a thread,
so synchronous test code (Docker CLI calls, ``time.sleep``) never stalls it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Self, TypedDict, Unpack

import aiohttp

from tests.waiting import wait_until

DEFAULT_TIMEOUT_S = 5.0
POLL_INTERVAL_S = 0.02


@dataclass(frozen=True, slots=True)
class Sample:
    """One request: ``status`` is ``None`` when no HTTP answer came back (see ``error``)."""

    start: float
    end: float
    wall: float
    status: int | None
    body: str
    error: str | None = None
    worker: int = 0

    @property
    def ok(self) -> bool:
        """An HTTP 200 answer."""
        return self.error is None and self.status == 200

    def describe(self) -> str:
        what = self.error if self.error else f"{self.status} {self.body[:60]!r}"
        return f"t={self.start:.3f}..{self.end:.3f} worker={self.worker} {what}"


@dataclass(frozen=True, slots=True)
class BodyStats:
    """When one body (e.g. ``"green\\n"``) was seen: count and first/last start and end."""

    count: int
    first_start: float
    first_end: float
    last_start: float
    last_end: float


@dataclass(frozen=True)
class LoadSummary:
    """Totals of one run; ``failures`` counts everything that is not a 200."""

    total: int
    ok: int
    failures: int
    duration: float
    rps: float
    statuses: Mapping[str, int]
    bodies: Mapping[str, BodyStats]

    def format(self) -> str:
        lines = [
            f"{self.total} requests in {self.duration:.2f}s ({self.rps:.0f} req/s), "
            f"{self.failures} failed; statuses {dict(sorted(self.statuses.items()))}"
        ]
        for body, stats in sorted(self.bodies.items(), key=lambda kv: kv[1].first_start):
            lines.append(
                f"  {body!r}: {stats.count} responses, "
                f"first {stats.first_start:.3f}, last {stats.last_end:.3f}"
            )
        return "\n".join(lines)


def _status_key(sample: Sample) -> str:
    return sample.error if sample.error else str(sample.status)


@dataclass
class LoadResult:
    """Every sample of a run, in completion order, with the questions tests ask of them."""

    samples: list[Sample] = field(default_factory=list)
    started: float = 0.0
    stopped: float = 0.0

    def failures(self) -> list[Sample]:
        """Every sample that is not a 200 answer."""
        return [s for s in self.samples if not s.ok]

    def between(self, start: float, end: float) -> list[Sample]:
        """Samples whose request started in ``[start, end)`` (monotonic clock)."""
        return [s for s in self.samples if start <= s.start < end]

    def bodies(self) -> dict[str, BodyStats]:
        stats: dict[str, BodyStats] = {}
        for s in self.samples:
            if not s.ok:
                continue
            old = stats.get(s.body)
            if old is None:
                stats[s.body] = BodyStats(1, s.start, s.end, s.start, s.end)
            else:
                stats[s.body] = BodyStats(
                    old.count + 1,
                    min(old.first_start, s.start),
                    min(old.first_end, s.end),
                    max(old.last_start, s.start),
                    max(old.last_end, s.end),
                )
        return stats

    def summary(self) -> LoadSummary:
        total = len(self.samples)
        ok = sum(1 for s in self.samples if s.ok)
        duration = max(self.stopped - self.started, 1e-9)
        return LoadSummary(
            total=total,
            ok=ok,
            failures=total - ok,
            duration=duration,
            rps=total / duration,
            statuses=dict(Counter(_status_key(s) for s in self.samples)),
            bodies=self.bodies(),
        )

    def cutover(self, old: str, new: str) -> tuple[float, float] | None:
        """``(last start of an old answer, first end of a new answer)`` if traffic moved cleanly.

        A clean move means no request that started after the first new answer
        arrived was served the old body: ``last_old_start < first_new_end``.
        Returns ``None`` when ``new`` was never served or ``old`` came back later.
        """
        bodies = self.bodies()
        if new not in bodies:
            return None
        first_new_end = bodies[new].first_end
        last_old_start = max(
            (s.start for s in self.samples if s.ok and s.body == old and s.start < first_new_end),
            default=float("-inf"),
        )
        late_old = [s for s in self.samples if s.ok and s.body == old and s.start >= first_new_end]
        if late_old:
            return None
        return last_old_start, first_new_end

    def body_sequence(self) -> list[str]:
        """Bodies (or ``<status>``) in request-start order, consecutive repeats merged.

        For reading, not asserting: requests that start within a millisecond of
        Traefik swapping its handler can interleave at the boundary.
        """
        out: list[str] = []
        for s in sorted(self.samples, key=lambda s: s.start):
            label = s.body if s.ok else f"<{_status_key(s)}>"
            if not out or out[-1] != label:
                out.append(label)
        return out


class LoadOptions(TypedDict, total=False):
    """Keyword options of :class:`LoadGenerator`, for wrappers that forward them."""

    host: str | None
    headers: Mapping[str, str] | None
    concurrency: int
    max_duration: float
    max_requests: int
    timeout: float


class LoadGenerator:
    """Fixed-concurrency GET load against one URL, bounded in time and request count."""

    def __init__(
        self,
        url: str,
        *,
        host: str | None = None,
        headers: Mapping[str, str] | None = None,
        concurrency: int = 8,
        max_duration: float = 30.0,
        max_requests: int = 200_000,
        timeout: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        if concurrency < 1 or max_duration <= 0 or max_requests < 1:
            raise ValueError("concurrency, max_duration and max_requests must be positive")
        self.url = url
        self.headers = dict(headers or {})
        if host is not None:
            self.headers["Host"] = host
        self.concurrency = concurrency
        self.max_duration = max_duration
        self.max_requests = max_requests
        self.timeout = timeout
        self.result = LoadResult()
        self._stop = threading.Event()
        self._sent = 0

    def stop(self) -> None:
        """Ask the workers to finish their current request and exit (thread-safe)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    async def _worker(self, index: int, session: aiohttp.ClientSession, deadline: float) -> None:
        samples = self.result.samples
        while not self._stop.is_set() and self._sent < self.max_requests:
            start = time.monotonic()
            if start >= deadline:
                break
            self._sent += 1
            wall = time.time()
            try:
                async with session.get(self.url, headers=self.headers) as response:
                    body = await response.text(errors="replace")
                    sample = Sample(
                        start, time.monotonic(), wall, response.status, body, None, index
                    )
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                sample = Sample(start, time.monotonic(), wall, None, "", type(exc).__name__, index)
                # A refused connection fails in microseconds; do not spin.
                await asyncio.sleep(0.001)
            samples.append(sample)

    async def run(self) -> LoadResult:
        """Send load until stopped or a bound is reached; return the result."""
        connector = aiohttp.TCPConnector(limit=self.concurrency, limit_per_host=0)
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        async with aiohttp.ClientSession(
            connector=connector, timeout=timeout, auto_decompress=False
        ) as session:
            self.result.started = time.monotonic()
            deadline = self.result.started + self.max_duration
            workers = [
                asyncio.create_task(self._worker(i, session, deadline), name=f"load-{i}")
                for i in range(self.concurrency)
            ]
            try:
                await asyncio.gather(*workers)
            finally:
                for task in workers:
                    task.cancel()
                await asyncio.gather(*workers, return_exceptions=True)
                self.result.stopped = time.monotonic()
        return self.result

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self.run(), name="load")
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop()
        await self._task


class BackgroundLoad:
    """A :class:`LoadGenerator` on its own event loop in a thread; ``with`` starts and stops it.

    ``samples`` can be read while it runs (appends are atomic under the GIL).
    """

    def __init__(self, url: str, **options: Unpack[LoadOptions]) -> None:
        self.generator = LoadGenerator(url, **options)
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    @property
    def result(self) -> LoadResult:
        return self.generator.result

    @property
    def samples(self) -> list[Sample]:
        return self.generator.result.samples

    def _main(self) -> None:
        try:
            asyncio.run(self.generator.run())
        except BaseException as exc:  # reported by stop()
            self._error = exc

    def start(self) -> Self:
        if self._thread is not None:
            raise RuntimeError("load already started")
        self._thread = threading.Thread(target=self._main, name="background-load", daemon=True)
        self._thread.start()
        return self

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float | None = None) -> LoadResult:
        """Stop the workers, wait for the thread, re-raise anything it raised."""
        self.generator.stop()
        if self._thread is not None:
            wait = timeout if timeout is not None else self.generator.timeout + 10.0
            self._thread.join(wait)
            if self._thread.is_alive():
                raise TimeoutError(f"load generator did not stop within {wait}s")
        if self._error is not None:
            raise self._error
        return self.result

    def wait_for(
        self, what: str, check: Callable[[Sequence[Sample]], bool], timeout: float
    ) -> None:
        """Poll ``check(samples)`` until true; bounded in time and count."""

        def done() -> bool:
            if check(self.samples):
                return True
            if not self.running:
                raise RuntimeError(f"load stopped while waiting for {what}")
            return False

        wait_until(what, done, timeout, interval=POLL_INTERVAL_S)

    def wait_body(self, body: str, timeout: float = 15.0, *, after: float = 0.0) -> Sample:
        """Wait for the first 200 answer with ``body`` whose request started at/after ``after``."""
        found: list[Sample] = []

        def check(samples: Sequence[Sample]) -> bool:
            for s in _tail(samples, after):
                if s.ok and s.body == body:
                    found.append(s)
                    return True
            return False

        self.wait_for(f"a response {body!r}", check, timeout)
        return found[0]

    def wait_requests(self, count: int, timeout: float = 10.0) -> None:
        """Wait until at least ``count`` more requests completed than now."""
        target = len(self.samples) + count
        self.wait_for(f"{count} more requests", lambda s: len(s) >= target, timeout)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _tail(samples: Sequence[Sample], after: float) -> Iterable[Sample]:
    """Samples that started at/after ``after``; scans from the end (completion order)."""
    n = len(samples)
    index = n
    # Completion order roughly follows start order; back off one worker round at a time.
    while index > 0 and samples[index - 1].end >= after:
        index -= 1
    return [s for s in samples[index:n] if s.start >= after]
