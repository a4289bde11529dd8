"""Prometheus metrics for self-hosted deployments, on `GET /metrics`; off unless SENTIMENT_METRICS=true.

SageMaker routes only /ping and /invocations to a container, so /metrics is for
those who run the image themselves (`docker compose`, Kubernetes). gunicorn's
workers are separate processes: prometheus_client's multiprocess mode keeps
each one's counts in files under a folder made at start, and a scrape, answered
by any worker, adds them up.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable

MULTIPROCESS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
PATHS = ("/ping", "/invocations", "/execution-parameters", "/metrics")
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    """The server's counters: requests by status, latency, answers by sentiment, capture outcomes."""

    def __init__(self, spool_count=None):
        # prometheus_client picks its multiprocess storage when imported: the folder must be set first.
        self.own_dir = None if os.environ.get(MULTIPROCESS_DIR_ENV) else tempfile.mkdtemp(prefix="sentiment-metrics-")
        if self.own_dir:
            os.environ[MULTIPROCESS_DIR_ENV] = self.own_dir
        from prometheus_client import Counter, Histogram

        self.requests = Counter("sentiment_requests", "HTTP requests answered, by path and status", ["path", "code"])
        self.latency = Histogram("sentiment_request_seconds", "time to answer /invocations", buckets=LATENCY_BUCKETS)
        self.answers = Counter("sentiment_answers", "texts answered, by sentiment", ["sentiment"])
        self.captured = Counter("sentiment_capture_written", "unrecognized messages written to the capture store")
        self.dropped = Counter("sentiment_capture_dropped", "unrecognized messages the capture store dropped")
        self.spool_count = spool_count  # () -> S3 spool files waiting for upload, or None

    def request(self, path: str, code: int, seconds: float) -> None:
        # Any other path is "other": a scan of random URLs must not grow a series per URL.
        self.requests.labels(path if path in PATHS else "other", str(code)).inc()
        if path == "/invocations":
            self.latency.observe(seconds)

    def count_answers(self, sentiments: Iterable[str]) -> None:
        for sentiment in sentiments:
            self.answers.labels(sentiment).inc()

    def render(self) -> tuple[bytes, str]:
        """The scrape: every worker's counts added up, plus the capture spool's size."""
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess
        from prometheus_client.core import GaugeMetricFamily

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        if self.spool_count is not None:
            registry.register(_SpoolCollector(self.spool_count, GaugeMetricFamily))
        return generate_latest(registry), CONTENT_TYPE_LATEST


    def close(self) -> None:
        """Remove the counts' folder, if this server made it (once every worker has stopped)."""
        if self.own_dir:
            shutil.rmtree(self.own_dir, ignore_errors=True)


def mark_process_dead(pid: int) -> None:
    """gunicorn's child_exit hook: a dead worker's live gauges no longer count (its counters still do)."""
    if os.environ.get(MULTIPROCESS_DIR_ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


class _SpoolCollector:
    """The number of S3 spool files not uploaded yet, counted at scrape time."""

    def __init__(self, count, family):
        self.count, self.family = count, family

    def collect(self):
        yield self.family("sentiment_capture_pending_files", "capture spool files waiting for upload to S3",
                          value=self.count())
