"""`python -m model.review`: label the messages the model could not decide, for retraining.

The server writes every message it cannot decide as one JSON line to
`unrecognized-*.jsonl` files in a capture folder (copy captures from S3 first,
e.g. `aws s3 sync s3://BUCKET/PREFIX captures/`). This command shows them one at
a time, oldest first, and appends the answers to FEEDBACK_DIR/feedback.txt as
BlazingText lines (`__label__positive <text>`), ready for a training channel:

    python -m model.review captures/ --feedback feedback/ --train channels/train
    python -m model.review --import labelled.csv --feedback feedback/ --train channels/train

Answers: p positive, n negative, s skip, q quit (the end of input quits too).
Every answer is written at once, so a review can be stopped at any time: the
state file FEEDBACK_DIR/.review-state.json records which captured lines were
answered (by the sha256 of the line), and the next run asks only about lines not
answered yet, including lines appended to the captures since.

A message is not asked when its cleaned text (`clean_text`) is already in
feedback.txt or in a `--train` file or folder, or is the text of a message
skipped before: it counts as "already known".
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import sys
import tempfile
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from model.datasets import LABEL_PREFIX, DataError, Example, read_path, to_blazingtext_line
from model.preprocessing import clean_text

CAPTURE_GLOB = "unrecognized-*.jsonl"
FEEDBACK_FILE = "feedback.txt"
STATE_FILE = ".review-state.json"
LOCK_FILE = ".review.lock"
STATE_VERSION = 1
LABELS = ("positive", "negative")
SKIP, QUIT, KNOWN = "skip", "quit", "known"
ANSWERS = {"p": "positive", "positive": "positive", "n": "negative", "negative": "negative",
           "s": SKIP, "skip": SKIP, "q": QUIT, "quit": QUIT}
PROMPT = "[p]ositive  [n]egative  [s]kip  [q]uit? "
ALLOWED = "type p (positive), n (negative), s (skip) or q (quit)"
# Shown escaped, never sent to the terminal: control characters and bidirectional overrides.
_BIDI = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


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
        lines += [f"  ignored {_count(count, 'malformed line')}: {reason}"
                  for reason, count in self.unusable.most_common()]
        lines += [f"  ignored {_count(count, 'row')} labelled {label!r} (only positive and negative are kept)"
                  for label, count in sorted(self.other_labels.items())]
        return lines


# --- captures ----------------------------------------------------------------


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


# --- feedback, state, known texts ---------------------------------------------


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
def _locked(feedback_dir: Path) -> Iterator[None]:
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


# --- interactive review ---------------------------------------------------------


def review(capture_dir: Path | str, feedback_dir: Path | str, train_paths: Sequence[Path | str] = (),
           answers: Iterator[str] | Iterable[str] = (), out: TextIO | None = None) -> Summary:
    """Ask for a label for every captured message not answered yet, oldest first.

    `answers` gives one answer per prompt (p/positive, n/negative, s/skip,
    q/quit; anything else is refused and asked again); when it runs out the
    review stops as on quit. Labelled messages are appended to
    FEEDBACK_DIR/feedback.txt and every answer is recorded in the state file at
    once. Ctrl-C (KeyboardInterrupt) stops the review like quit, with
    `interrupted` set. Raises ReviewError (or DataError for unreadable --train
    data) for arguments that cannot be used.
    """
    out = out or sys.stdout
    answers = iter(answers)
    feedback_dir = Path(feedback_dir)
    scan = read_captures(capture_dir)
    summary = Summary(unusable=scan.unusable)
    with _locked(feedback_dir):
        known_texts = set(load_known(feedback_dir / FEEDBACK_FILE, train_paths))
        state_path = feedback_dir / STATE_FILE
        state = load_state(state_path)
        answered_before = sum(capture.key in state for capture in scan.captures)
        # Texts skipped before are not asked again either (their lines are still in the captures).
        known_texts |= {clean_text(c.text) for c in scan.captures if state.get(c.key) == SKIP}
        groups: dict[str, list[Capture]] = {}  # cleaned text -> its new captures; only the first is asked
        for capture in scan.captures:
            if capture.key in state:
                continue
            text = clean_text(capture.text)
            if text in known_texts:
                state[capture.key] = KNOWN
                summary.known += 1
            else:
                groups.setdefault(text, []).append(capture)
        if summary.known:
            save_state(state_path, state)
        queue = list(groups.values())
        out.write(f"{_count(len(scan.captures), 'captured message')} in {_count(scan.files, 'file')} under "
                  f"{capture_dir}: {len(queue)} to review, {answered_before} answered before, "
                  f"{summary.known} already known\n")
        for reason, count in scan.unusable.most_common():
            out.write(f"  ignored {_count(count, 'malformed line')}: {reason}\n")
        summary.remaining = len(queue)
        with FeedbackWriter(feedback_dir / FEEDBACK_FILE) as feedback:
            try:
                for number, group in enumerate(queue, 1):
                    answer = _ask(group[0], number, len(queue), answers, out)
                    if answer == QUIT:
                        break
                    first, *duplicates = group
                    if answer in LABELS:
                        feedback.add(Example(first.text, answer))  # written before the state: safe to stop between
                        setattr(summary, answer, getattr(summary, answer) + 1)
                    else:
                        summary.skipped += 1
                    state[first.key] = answer
                    for duplicate in duplicates:
                        state[duplicate.key] = KNOWN
                    summary.known += len(duplicates)
                    save_state(state_path, state)
                    summary.remaining -= 1
            except KeyboardInterrupt:
                summary.interrupted = True
                out.write("\ninterrupted: every answer given so far is saved\n")
    out.write(f"feedback: {feedback_dir / FEEDBACK_FILE}\n")
    for line in summary.lines():
        out.write(line + "\n")
    out.flush()
    return summary


def _ask(capture: Capture, number: int, total: int, answers: Iterator[str], out: TextIO) -> str:
    confidence = "?" if capture.confidence is None else f"{capture.confidence:.2f}"
    out.write(f"\n[{number}/{total}] model guess: {capture.guess or '?'} (confidence {confidence})"
              f"   {capture.time or 'time unknown'}\n    {_printable(capture.text)}\n")
    while True:
        out.write(PROMPT)
        out.flush()
        try:
            raw = next(answers)
        except StopIteration:
            out.write("\n(end of input: stopping)\n")
            return QUIT
        answer = ANSWERS.get(raw.strip().lower())
        if answer:
            return answer
        out.write(f"{raw.strip()!r} is not an answer: {ALLOWED}\n")


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _printable(text: str) -> str:
    """The text on one line, with characters that could drive the terminal shown escaped."""
    return "".join(c.encode("unicode_escape").decode("ascii")
                   if unicodedata.category(c) == "Cc" or c in _BIDI else c for c in " ".join(text.split()))


# --- bulk import -----------------------------------------------------------------


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
    with _locked(feedback_dir):
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
    out.write(f"read {_count(len(examples), 'row')} from {_count(len(report.files), 'file')} "
              f"-> {feedback_dir / FEEDBACK_FILE}\n")
    for line in summary.lines():
        out.write(line + "\n")
    out.flush()
    return summary


# --- command line -----------------------------------------------------------------


def _stdin_answers(echo: bool) -> Iterator[str]:
    """Lines from stdin, as `input()` reads them; echoed when stdin is not a terminal, to keep the log readable."""
    while True:
        try:
            line = input()
        except EOFError:
            return
        if echo:
            print(line)
        yield line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m model.review",
        description="Label the messages the model could not decide (captured unrecognized-*.jsonl), for retraining.",
        usage="%(prog)s CAPTURE_DIR --feedback FEEDBACK_DIR [--train PATH ...]\n"
              "       %(prog)s --import LABELLED_FILE [...] --feedback FEEDBACK_DIR [--train PATH ...]",
        epilog="Answers: p positive, n negative, s skip, q quit (end of input quits too). "
               "Resumable: answered lines are recorded in FEEDBACK_DIR/.review-state.json.")
    parser.add_argument("capture_dir", nargs="?", type=Path, metavar="CAPTURE_DIR",
                        help="folder of unrecognized-*.jsonl captures (searched recursively)")
    parser.add_argument("--import", dest="imports", nargs="+", type=Path, metavar="LABELLED_FILE",
                        help="instead of reviewing: append these labelled files (any format model.datasets reads, "
                             "e.g. CSV label,text) to the feedback")
    parser.add_argument("--feedback", type=Path, required=True, metavar="FEEDBACK_DIR",
                        help="folder of feedback.txt (BlazingText lines, appended) and the review state")
    parser.add_argument("--train", dest="train", nargs="+", action="extend", type=Path, default=[], metavar="PATH",
                        help="training files or folders: messages whose cleaned text is in them are not asked")
    args = parser.parse_args(argv)
    if (args.capture_dir is None) == (args.imports is None):
        parser.error("give either a CAPTURE_DIR to review or --import LABELLED_FILE ...")
    try:
        if args.imports:
            import_labelled(args.imports, args.feedback, args.train)
            return 0
        summary = review(args.capture_dir, args.feedback, args.train, _stdin_answers(echo=not sys.stdin.isatty()))
    except (ReviewError, DataError) as error:
        print(f"review: {error}", file=sys.stderr)
        return 1
    return 130 if summary.interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
