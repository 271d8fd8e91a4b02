"""Judging one canary step from Traefik's own Prometheus metrics.

Pure: the text is parsed with ``prometheus_client``'s parser (no I/O here).
A step is judged on the *deltas* of the canary color's service between the
start of its window and now: ``traefik_service_requests_total`` by code and
the ``traefik_service_request_duration_seconds`` histogram, both summed over
method and protocol. A counter that went backwards, in any series (Traefik
restarted), starts the window over from zero.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

REQUESTS = "traefik_service_requests_total"
DURATION = "traefik_service_request_duration_seconds"


class AnalysisError(ValueError):
    """The metrics text could not be read (not Prometheus text)."""


@dataclass(frozen=True)
class Snapshot:
    """One service's cumulative figures at one scrape.

    ``codes`` maps an HTTP status code to its request count; ``buckets`` maps a
    histogram upper bound (seconds, ``inf`` included) to its cumulative count.
    """

    codes: Mapping[str, float] = field(default_factory=dict)
    buckets: Mapping[float, float] = field(default_factory=dict)

    @property
    def requests(self) -> float:
        return sum(self.codes.values())


def snapshot(text: str, service: str) -> Snapshot:
    """The figures of Traefik service ``service`` (e.g. ``web-green@http``) in ``text``.

    A service Traefik has not served yet is absent from the text: an empty
    snapshot, the same as zero requests.
    """
    codes: dict[str, float] = {}
    buckets: dict[float, float] = {}
    try:
        families = list(text_string_to_metric_families(text))
    except (ValueError, TypeError, IndexError) as exc:
        raise AnalysisError(f"not Prometheus text: {exc}") from exc
    for family in families:
        for sample in family.samples:
            if sample.labels.get("service") != service:
                continue
            if sample.name == REQUESTS:
                code = sample.labels.get("code", "")
                codes[code] = codes.get(code, 0.0) + sample.value
            elif sample.name == f"{DURATION}_bucket":
                bound = _bound(sample.labels.get("le", "+Inf"))
                buckets[bound] = buckets.get(bound, 0.0) + sample.value
    return Snapshot(codes, buckets)


def _bound(le: str) -> float:
    """A histogram bucket's upper bound; a label that is no number makes the text unreadable.

    Raised as :class:`AnalysisError`, the scrape counts as failed: the step is
    extended, then aborted for want of figures (never a crash of the driver).
    """
    try:
        bound = float(le)
    except ValueError as exc:
        raise AnalysisError(f"histogram bucket with le={le!r}") from exc
    if math.isnan(bound):
        raise AnalysisError(f"histogram bucket with le={le!r}")
    return bound


@dataclass(frozen=True)
class Window:
    """What one service did between two snapshots."""

    requests: int
    errors: int
    p99_ms: float | None

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


def _is_error(code: str) -> bool:
    """5xx answers count as errors: 4xx are the client's business."""
    return code.startswith("5")


def quantile(q: float, buckets: Mapping[float, float]) -> float | None:
    """The ``q`` quantile (seconds) of cumulative ``buckets``, as PromQL's histogram_quantile.

    Linear interpolation inside the bucket that holds the rank; a rank in the
    ``+Inf`` bucket answers the highest finite bound. ``None`` without samples.
    """
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    total = buckets[bounds[-1]]
    rank = q * total
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower
            inside = count - below
            if inside <= 0:
                return bound
            return lower + (bound - lower) * (rank - below) / inside
        lower, below = bound, count
    return lower


def was_reset(before: Snapshot, after: Snapshot) -> bool:
    """Some series went backwards (or vanished) between the two: Traefik restarted.

    Checked per series, not on the total: a restart followed by more requests
    than before still shows as a fallen series (issue 19, defect 7).
    """
    fallen_codes = any(after.codes.get(code, 0.0) < n for code, n in before.codes.items())
    return fallen_codes or any(after.buckets.get(b, 0.0) < n for b, n in before.buckets.items())


def delta(before: Snapshot, after: Snapshot) -> Window:
    """The window from ``before`` to ``after``.

    After a reset every series counts from zero: a restart resets all of
    Traefik's counters at once, so even a series that grew past its old value
    started over, and its current value is the window (Prometheus' ``increase``
    does the same for the series it sees fall). Requests between the ``before``
    scrape and the restart are lost, as they are to Prometheus.
    """
    if was_reset(before, after):
        before = Snapshot()
    codes = {c: max(0.0, n - before.codes.get(c, 0.0)) for c, n in after.codes.items()}
    buckets = {b: max(0.0, n - before.buckets.get(b, 0.0)) for b, n in after.buckets.items()}
    p99 = quantile(0.99, buckets)
    return Window(
        requests=int(sum(codes.values())),
        errors=int(sum(n for c, n in codes.items() if _is_error(c))),
        # Rounded as the state file stores it, so a restarted provider holds the same figures.
        p99_ms=None if p99 is None else round(p99 * 1000.0, 3),
    )
