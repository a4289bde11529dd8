"""The feedback folder: labelled messages as BlazingText lines, the review state, and bulk import.

FEEDBACK_DIR/feedback.txt gets one `__label__<label> <text>` line per labelled message
(a training channel as it is); FEEDBACK_DIR/.review-state.json records which captured
lines were answered; one review or import writes to a folder at a time.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from model.captures import ReviewError
from model.datasets import Example, read_path, to_blazingtext_line
from model.preprocessing import clean_text

FEEDBACK_FILE = "feedback.txt"
STATE_FILE = ".review-state.json"
LOCK_FILE = ".review.lock"
STATE_VERSION = 1
LABELS = ("positive", "negative")


@dataclass
class Summary:
    """What one review or import did."""

    positive: int = 0
    negative: int = 0
    skipped: int = 0
    known: int = 0  # not asked / not imported: the cleaned text was already known
    conflicting: int = 0  # import: of the known ones, those known with the other label
    remaining: int = 0  # review: messages still to be asked
    unusable: Counter = field(default_factory=Counter)  # capture lines or rows that could not be used, by reason
    other_labels: Counter = field(default_factory=Counter)  # import: rows with a label not in LABELS
    interrupted: bool = False

    def lines(self) -> list[str]:
        """The summary as printed at the end."""
        known = f"already known {self.known}"
        if self.conflicting:
            known += f" ({self.conflicting} with the other label)"
        lines = [f"labelled {self.positive} positive, {self.negative} negative; skipped {self.skipped}; {known}; "
                 f"remaining {self.remaining}"]
        lines += [f"  ignored {plural(count, 'malformed line')}: {reason}"
                  for reason, count in self.unusable.most_common()]
        lines += [f"  ignored {plural(count, 'row')} labelled {label!r} (only positive and negative are kept)"
                  for label, count in sorted(self.other_labels.items())]
        return lines


def load_known(feedback_file: Path, train_paths: Iterable[Path | str] = ()) -> dict[str, str]:
    """Cleaned text -> label of every example in `feedback_file` (if it exists) and the train paths."""
    known: dict[str, str] = {}
    paths = [Path(p) for p in train_paths]
    if feedback_file.exists() and feedback_file.read_bytes().strip():
        paths.insert(0, feedback_file)
    for path in paths:
        if not path.exists():
            raise ReviewError(f"{path}: no such file or folder")
        examples, _ = read_path(path)
        for example in examples:
            known.setdefault(clean_text(example.text), example.label)
    return known


def load_state(path: Path) -> dict[str, str]:
    """Captured-line key -> answer ("positive", "negative", "skip" or "known") from the state file."""
    if not path.exists():
        return {}
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        answers = state["answers"]
        if state.get("version") != STATE_VERSION or not isinstance(answers, dict):
            raise ValueError("unknown version")
    except (ValueError, KeyError, TypeError) as error:
        raise ReviewError(f"{path}: not a review state file this version can read ({error}); "
                          "move it away to review every captured message again") from error
    return answers


def save_state(path: Path, answers: dict[str, str]) -> None:
    """Write the state file atomically: a reader sees the old state or the new one, never a part."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump({"version": STATE_VERSION, "answers": answers}, out, separators=(",", ":"))
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class FeedbackWriter:
    """Appends BlazingText lines to feedback.txt, each one flushed to disk before `add` returns."""

    def __init__(self, path: Path):
        needs_newline = path.exists() and path.stat().st_size > 0 and not path.read_bytes().endswith(b"\n")
        self.path = path
        self.file = path.open("a", encoding="utf-8", newline="\n")
        if needs_newline:  # a hand-edited file without a final newline: do not glue our line to its last one
            self.file.write("\n")

    def add(self, example: Example) -> None:
        self.file.write(to_blazingtext_line(example) + "\n")
        self.file.flush()
        os.fsync(self.file.fileno())

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> FeedbackWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@contextmanager
def locked(feedback_dir: Path) -> Iterator[None]:
    """One review or import at a time per feedback folder: two would append the same messages twice."""
    feedback_dir.mkdir(parents=True, exist_ok=True)
    with (feedback_dir / LOCK_FILE).open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as error:
            raise ReviewError(f"{feedback_dir}: another review or import is writing to this folder") from error
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def import_labelled(paths: Sequence[Path | str], feedback_dir: Path | str, train_paths: Sequence[Path | str] = (),
                    out: TextIO | None = None) -> Summary:
    """Append already-labelled examples (any format `read_path` reads) to FEEDBACK_DIR/feedback.txt.

    Only labels positive and negative are kept (the others are counted in
    `other_labels`); an example whose cleaned text is already in feedback.txt,
    in the train paths, or earlier in the import is counted as known and not
    added. Raises ReviewError or DataError for files that cannot be used.
    """
    out = out or sys.stdout
    feedback_dir = Path(feedback_dir)
    for path in map(Path, paths):
        if not path.exists():
            raise ReviewError(f"{path}: no such file or folder")
    examples, report = read_path(*paths)
    summary = Summary(unusable=Counter(report.skipped))
    with locked(feedback_dir):
        known = load_known(feedback_dir / FEEDBACK_FILE, train_paths)
        with FeedbackWriter(feedback_dir / FEEDBACK_FILE) as feedback:
            for example in examples:
                if example.label not in LABELS:
                    summary.other_labels[example.label] += 1
                    continue
                text = clean_text(example.text)
                if text in known:
                    summary.known += 1
                    summary.conflicting += known[text] != example.label
                    continue
                known[text] = example.label
                feedback.add(example)
                setattr(summary, example.label, getattr(summary, example.label) + 1)
    out.write(f"read {plural(len(examples), 'row')} from {plural(len(report.files), 'file')} "
              f"-> {feedback_dir / FEEDBACK_FILE}\n")
    for line in summary.lines():
        out.write(line + "\n")
    out.flush()
    return summary


def plural(number: int, noun: str) -> str:
    """"1 row", "2 rows"."""
    return f"{number} {noun}{'' if number == 1 else 's'}"
