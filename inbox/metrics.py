"""Process-side metrics: counters and histograms that web and worker processes update.

Labels are account ids, platforms, kinds, outcomes and endpoint names: never a path, a query,
a handle, a name or a text. The metric objects are made on first use, not at import, so that
prometheus_client reads PROMETHEUS_MULTIPROC_DIR only once the process that serves (a
gunicorn worker, forked after `socialcare serve` set it) records its first value.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prometheus_client import Counter, Histogram

# Anything else a client sends as a method becomes "other": labels must stay a short list.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class _Metrics:
    """The process's metric objects, registered once with prometheus_client's registry."""

    def __init__(self) -> None:
        from prometheus_client import Counter, Histogram

        self.requests: Histogram = Histogram(
            "socialcare_request_duration_seconds",
            "Time to answer a web request, per view (endpoint name), method and status class.",
            ["endpoint", "method", "status"],
        )
        self.ingested: Counter = Counter(
            "socialcare_items_ingested",
            "New items stored, per account, kind and source (poll or webhook).",
            ["account", "platform", "kind", "source"],
        )
        self.dead_lettered: Counter = Counter(
            "socialcare_items_dead_lettered",
            "Items kept as dead letters because they could not be read or stored.",
            ["account", "platform", "source"],
        )
        self.polls: Counter = Counter(
            "socialcare_polls", "Polls of an account's platform.", ["account", "platform"]
        )
        self.poll_errors: Counter = Counter(
            "socialcare_poll_errors",
            "Failed polls, per account and reason (revoked, rate_limited, error).",
            ["account", "platform", "reason"],
        )
        self.rate_limit_waits: Counter = Counter(
            "socialcare_rate_limit_waits",
            "Times a platform asked us to wait before polling again.",
            ["account", "platform"],
        )
        self.rate_limit_seconds: Counter = Counter(
            "socialcare_rate_limit_wait_seconds",
            "Seconds platforms asked us to wait, summed.",
            ["account", "platform"],
        )
        self.replies: Counter = Counter(
            "socialcare_replies",
            "Reply delivery attempts, per account and outcome (sent, failed, refused).",
            ["account", "platform", "outcome"],
        )
        self.research_records: Counter = Counter(
            "socialcare_research_records",
            "Outbox rows drained, per outcome (written, skipped, failed, rejected).",
            ["outcome"],
        )
        self.research_seconds: Counter = Counter(
            "socialcare_research_drain_seconds",
            "Seconds spent draining non-empty outbox batches (anonymizing and storing).",
        )
        self.leak_rejections: Counter = Counter(
            "socialcare_leak_guard_rejections",
            "Records the leak guard refused, per kind of identifier that survived redaction.",
            ["kind"],
        )


_made: list[_Metrics] = []
_making = threading.Lock()


def _metrics() -> _Metrics:
    # Threads of one process (gunicorn's gthread workers, concurrent ingests) may record their
    # first values at once; registering the metrics twice would raise. One lock, taken only
    # until they exist.
    if not _made:
        with _making:
            if not _made:
                _made.append(_Metrics())
    return _made[0]


def status_class(status: int) -> str:
    """The status code's class ("2xx", "4xx", …): single codes would add little but labels."""
    return f"{status // 100}xx" if 100 <= status < 600 else "other"


def method_label(method: str) -> str:
    """The request method, or "other" for anything a client made up."""
    return method if method in _METHODS else "other"


def observe_request(*, endpoint: str, method: str, status: int, seconds: float) -> None:
    """Record how long a web request took."""
    _metrics().requests.labels(endpoint, method_label(method), status_class(status)).observe(
        seconds
    )


def count_ingested(
    *, account_id: int | None, platform: str, source: str, kinds: Mapping[str, int], failed: int
) -> None:
    """Record the new items (per kind) and dead letters of a committed batch."""
    metrics, account = _metrics(), str(account_id)
    for kind, count in kinds.items():
        if count:
            metrics.ingested.labels(account, platform, kind, source).inc(count)
    if failed:
        metrics.dead_lettered.labels(account, platform, source).inc(failed)


def count_poll(*, account_id: int | None, platform: str, error: str | None = None) -> None:
    """Record one poll and, when it failed, why ("revoked", "rate_limited" or "error")."""
    metrics, account = _metrics(), str(account_id)
    metrics.polls.labels(account, platform).inc()
    if error is not None:
        metrics.poll_errors.labels(account, platform, error).inc()


def count_rate_limit(*, account_id: int | None, platform: str, seconds: float) -> None:
    """Record that a platform asked us to wait this long."""
    metrics, account = _metrics(), str(account_id)
    metrics.rate_limit_waits.labels(account, platform).inc()
    metrics.rate_limit_seconds.labels(account, platform).inc(max(0.0, seconds))


def count_reply(*, account_id: int | None, platform: str, outcome: str) -> None:
    """Record a reply delivery attempt's outcome: "sent", "failed" or "refused"."""
    _metrics().replies.labels(str(account_id), platform, outcome).inc()


def count_drain(*, outcomes: Mapping[str, int], seconds: float) -> None:
    """Record a drained outbox batch: rows per outcome and the time it took."""
    metrics = _metrics()
    if not any(outcomes.values()):
        return  # an idle drain would only dilute the throughput
    for outcome, count in outcomes.items():
        metrics.research_records.labels(outcome).inc(count)
    metrics.research_seconds.inc(seconds)


def count_leak(kinds: tuple[str, ...]) -> None:
    """Record a record the leak guard refused, once per kind of identifier it found."""
    for kind in kinds:
        _metrics().leak_rejections.labels(kind).inc()
