"""The captures of unrecognized messages, as the server writes them (`container/capture.py`): read for review.

Every message the server cannot decide is one JSON line in an `unrecognized-*.jsonl`
file of a capture folder (copied from S3 first when captured there).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from model.datasets import LABEL_PREFIX

CAPTURE_GLOB = "unrecognized-*.jsonl"


class ReviewError(Exception):
    """Arguments or files the command cannot work with; the message says which and why."""


@dataclass(frozen=True)
class Capture:
    """One captured message: its text, the model's guess, and where it was found."""

    key: str  # sha256 of the raw JSON line: stable across runs, files and copies
    text: str
    guess: str | None
    confidence: float | None
    time: str | None
    file: str
    line: int


@dataclass
class CaptureScan:
    """All complete, usable lines of a capture folder, oldest first; unusable lines counted by reason."""

    captures: list[Capture] = field(default_factory=list)
    files: int = 0
    unusable: Counter = field(default_factory=Counter)


def read_captures(capture_dir: Path | str) -> CaptureScan:
    """Read every `unrecognized-*.jsonl` under `capture_dir`, sorted by capture time, then file and line.

    Only complete lines count: a final line without a newline is still being
    written and is left for a later run. Lines that are not JSON objects, or
    have no text in "source", are counted in `unusable` and skipped.
    """
    capture_dir = Path(capture_dir)
    if not capture_dir.is_dir():
        raise ReviewError(f"{capture_dir}: no such folder (copy the captures from S3 first, e.g. "
                          f"aws s3 sync s3://BUCKET/PREFIX {capture_dir})")
    files = sorted(path for path in capture_dir.rglob(CAPTURE_GLOB) if path.is_file()
                   and not any(part.startswith(".") for part in path.relative_to(capture_dir).parts))
    scan = CaptureScan(files=len(files))
    seen: set[str] = set()
    for path in files:
        try:
            data = path.read_bytes()
        except FileNotFoundError:  # removed since listed
            continue
        except OSError as error:
            raise ReviewError(f"{path}: cannot be read ({error.strerror})") from error
        complete = data[:data.rfind(b"\n") + 1]
        for number, raw in enumerate(complete.split(b"\n")[:-1], 1):
            if not raw.strip():
                continue
            capture = _parse_line(raw, str(path.relative_to(capture_dir)), number)
            if isinstance(capture, str):
                scan.unusable[capture] += 1
            elif capture.key not in seen:  # the same line copied twice is one message
                seen.add(capture.key)
                scan.captures.append(capture)
    scan.captures.sort(key=_capture_order)
    return scan


def _parse_line(raw: bytes, file: str, number: int) -> Capture | str:
    """A Capture, or the reason the line cannot be used."""
    try:
        record = json.loads(raw)
    except ValueError:  # invalid JSON or invalid UTF-8
        return "not valid JSON"
    if not isinstance(record, dict):
        return "not a JSON object"
    text = record.get("source")
    if not isinstance(text, str) or not text.strip():
        return 'no text in "source"'
    if text.split()[0].startswith(LABEL_PREFIX):
        return f"text starts with {LABEL_PREFIX} (would not read back as BlazingText)"
    confidence = record.get("confidence")
    guess = record.get("guess")
    moment = record.get("time")
    return Capture(key=hashlib.sha256(raw).hexdigest(), text=text,
                   guess=guess if isinstance(guess, str) else None,
                   confidence=float(confidence) if isinstance(confidence, int | float) else None,
                   time=moment if isinstance(moment, str) else None, file=file, line=number)


def _capture_order(capture: Capture) -> tuple:
    timestamp = None
    if capture.time:
        try:
            moment = datetime.fromisoformat(capture.time)
            timestamp = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
        except ValueError:
            pass
    return (timestamp is None, timestamp or 0.0, capture.file, capture.line)
