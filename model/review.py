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
import sys
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TextIO

from model.captures import Capture, ReviewError, read_captures
from model.datasets import DataError, Example
from model.feedback import (
    FEEDBACK_FILE,
    LABELS,
    STATE_FILE,
    FeedbackWriter,
    Summary,
    import_labelled,
    load_known,
    load_state,
    locked,
    plural,
    save_state,
)
from model.preprocessing import clean_text

SKIP, QUIT, KNOWN = "skip", "quit", "known"
ANSWERS = {"p": "positive", "positive": "positive", "n": "negative", "negative": "negative",
           "s": SKIP, "skip": SKIP, "q": QUIT, "quit": QUIT}
PROMPT = "[p]ositive  [n]egative  [s]kip  [q]uit? "
ALLOWED = "type p (positive), n (negative), s (skip) or q (quit)"
# Shown escaped, never sent to the terminal: control characters and bidirectional overrides.
_BIDI = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


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
    with locked(feedback_dir):
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
        out.write(f"{plural(len(scan.captures), 'captured message')} in {plural(scan.files, 'file')} under "
                  f"{capture_dir}: {len(queue)} to review, {answered_before} answered before, "
                  f"{summary.known} already known\n")
        for reason, count in scan.unusable.most_common():
            out.write(f"  ignored {plural(count, 'malformed line')}: {reason}\n")
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


def _printable(text: str) -> str:
    """The text on one line, with characters that could drive the terminal shown escaped."""
    return "".join(c.encode("unicode_escape").decode("ascii")
                   if unicodedata.category(c) == "Cc" or c in _BIDI else c for c in " ".join(text.split()))


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
