"""Scoring messages: against a running endpoint's `/invocations`, or with the model in process.

Both give one `Verdict` per message. "unrecognized" stays unrecognized: it is counted and shown,
never turned into a guess. The model's labels other than positive/negative count as unrecognized
too (the analytics only read those two feelings).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from checkins.http import Retry, post
from checkins.readers import Verdict

UNRECOGNIZED = "unrecognized"
POLAR = ("positive", "negative")


class Scorer(Protocol):
    def score(self, texts: Sequence[str]) -> list[Verdict]:
        """One verdict per text, in order."""
        ...


def _polar(sentiment: str, confidence: float) -> Verdict:
    return Verdict(sentiment if sentiment in POLAR else UNRECOGNIZED, confidence)


class ModelScorer:
    """The model in `model_dir`, loaded through `model.predictor.load`, with the threshold its manifest
    records (or `threshold`, as SENTIMENT_THRESHOLD overrides it for a deployment)."""

    def __init__(self, model_dir: Path, threshold: float | None = None):
        from model.predictor import load  # only this path needs the model's libraries

        self.predictor = load(model_dir)
        recorded = (self.predictor.manifest.get("threshold") or {}).get("value", 0.0)
        self.threshold = recorded if threshold is None else threshold

    def score(self, texts: Sequence[str]) -> list[Verdict]:
        # Check-ins repeat ("ok", "tired", a participant's usual words): each distinct text is
        # predicted once, which matters now that every prediction also runs VADER (~0.4 ms).
        distinct = list(dict.fromkeys(texts))
        verdicts = {}
        for text, prediction in zip(distinct, self.predictor.predict(distinct, k=1)):
            label, prob = prediction.labels[0], prediction.probs[0]
            verdicts[text] = _polar(label if prob >= self.threshold else UNRECOGNIZED, prob)
        return [verdicts[text] for text in texts]


class EndpointScorer:
    """A running endpoint (`serve`, or anything speaking its contract) at `url` (…/invocations).

    Texts go `batch_size` at a time as `{"instances": [...]}`; a bearer token is sent when
    SENTIMENT_API_TOKEN is set (a self-hosted server's). `threshold` is only used when the answers
    lack `sentiment` (SageMaker's built-in BlazingText); otherwise the server's verdict stands.
    """

    def __init__(self, url: str, batch_size: int = 500, retry: Retry | None = None, threshold: float = 0.0):
        self.url = url if url.rstrip("/").endswith("/invocations") else url.rstrip("/") + "/invocations"
        self.batch_size = batch_size
        self.retry = retry or Retry()
        self.threshold = threshold
        self.headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if token := os.environ.get("SENTIMENT_API_TOKEN"):
            self.headers["Authorization"] = f"Bearer {token}"

    def score(self, texts: Sequence[str]) -> list[Verdict]:
        verdicts: list[Verdict] = []
        for start in range(0, len(texts), self.batch_size):
            batch = list(texts[start:start + self.batch_size])
            body = json.dumps({"instances": batch}).encode()
            answers = json.loads(post(self.url, body, self.headers, self.retry, on_retry=_warn))
            if not isinstance(answers, list) or len(answers) != len(batch):
                raise ValueError(f"{self.url}: expected {len(batch)} answers, got {str(answers)[:200]}")
            verdicts += [self._verdict(answer) for answer in answers]
        return verdicts

    def _verdict(self, answer: dict) -> Verdict:
        if "sentiment" in answer:
            return _polar(answer["sentiment"], float(answer["confidence"]))
        label, prob = answer["label"][0].removeprefix("__label__"), float(answer["prob"][0])
        return _polar(label if prob >= self.threshold else UNRECOGNIZED, prob)


def _warn(message: str) -> None:
    print(f"checkins: {message}", file=sys.stderr)


class Progress:
    """A one-line progress bar on stderr when it is a terminal; silent otherwise (logs, CI)."""

    def __init__(self, total: int | None, label: str = "scored"):
        self.total, self.label, self.done = total, label, 0
        self.started = time.monotonic()
        self.shown = 0.0
        self.enabled = sys.stderr.isatty()

    def advance(self, count: int) -> None:
        self.done += count
        now = time.monotonic()
        if self.enabled and now - self.shown >= 0.2:
            self.shown = now
            rate = self.done / max(now - self.started, 1e-9)
            if self.total:
                share = min(1.0, self.done / self.total)
                bar = "#" * int(share * 30)
                text = f"[{bar:<30}] {self.done:,}/{self.total:,} {self.label} ({rate:,.0f}/s)"
            else:
                text = f"{self.done:,} {self.label} ({rate:,.0f}/s)"
            sys.stderr.write("\r" + text)
            sys.stderr.flush()

    def close(self) -> None:
        if self.enabled and self.done:
            sys.stderr.write("\n")
