"""Check-in files: CSV or JSON lines, and the JSON lines of a SageMaker batch transform joined to its input.

Every row has `participant`, `group`, `time` (ISO 8601, with or without a zone) and `message`
(`source` is accepted for it, as in the endpoint's JSON lines). A row of a batch transform run with
`JoinSource=Input` also carries the model's answer under `SageMakerOutput`; such rows arrive scored.

A check-in counts on the calendar date written in its time: 23:30+02:00 is that evening, the
participant's own day, whatever the zone. Rows that cannot be used are counted with their line
number and reason (`BadRow`); they never stop the read.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

FIELDS = ("participant", "group", "time", "message")
BATCH_OUTPUT = "SageMakerOutput"


class Verdict(NamedTuple):
    """The model's answer for one message: "positive", "negative" or "unrecognized", and its confidence."""

    sentiment: str
    confidence: float


class Row(NamedTuple):
    """One usable check-in. `day` is the proleptic ordinal of its local date; `verdict` is set when
    the input already carries the model's answer (batch transform output)."""

    line: int
    participant: str
    group: str
    time: str
    day: int
    message: str
    verdict: Verdict | None


@dataclass(frozen=True)
class BadRow:
    """A row left out, with the line it starts on (1-based) and why."""

    line: int
    reason: str


def read_rows(path: Path, bad: list[BadRow], threshold: float = 0.0) -> Iterator[Row]:
    """The usable rows of `path` in file order; unusable ones are appended to `bad`.

    `threshold` applies to batch transform answers that carry only BlazingText's `label`/`prob`
    (the built-in algorithm's output), not to answers that already say their `sentiment`.
    """
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as file:
        first = file.readline()
        file.seek(0)
        if first.lstrip().startswith("{"):
            yield from _jsonl_rows(file, bad, threshold)
        else:
            yield from _csv_rows(file, bad)


def _csv_rows(file: io.TextIOBase, bad: list[BadRow]) -> Iterator[Row]:
    reader = csv.reader(file)
    header = [name.strip().lower() for name in next(reader, [])]
    if "message" not in header and "source" in header:
        header[header.index("source")] = "message"
    missing = [name for name in FIELDS if name not in header]
    if missing:
        bad.append(BadRow(1, f"the header has no {', '.join(missing)} column (it is: {','.join(header)})"))
        return
    columns = [header.index(name) for name in FIELDS]
    width = len(header)
    start = reader.line_num + 1
    for record in reader:
        line, start = start, reader.line_num + 1  # a quoted field may span lines: report where it starts
        if not record or record == [""]:
            continue
        if len(record) != width:
            bad.append(BadRow(line, f"{len(record)} fields, the header has {width}"))
            continue
        row = _row(line, *(record[i] for i in columns), None)
        if isinstance(row, BadRow):
            bad.append(row)
        else:
            yield row


def _jsonl_rows(file: io.TextIOBase, bad: list[BadRow], threshold: float) -> Iterator[Row]:
    for line, text in enumerate(file, 1):
        if not text.strip():
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as error:
            bad.append(BadRow(line, f"not JSON ({error.msg})"))
            continue
        if not isinstance(obj, dict):
            bad.append(BadRow(line, "not a JSON object"))
            continue
        verdict = None
        if BATCH_OUTPUT in obj:
            verdict = _verdict(obj[BATCH_OUTPUT], threshold)
            if verdict is None:
                bad.append(BadRow(line, f"{BATCH_OUTPUT} is not an answer of the model"))
                continue
        message = obj.get("message", obj.get("source"))
        row = _row(line, obj.get("participant"), obj.get("group"), obj.get("time"), message, verdict)
        if isinstance(row, BadRow):
            bad.append(row)
        else:
            yield row


def _row(line: int, participant: object, group: object, time: object, message: object,
         verdict: Verdict | None) -> Row | BadRow:
    values = {"participant": participant, "group": group, "time": time, "message": message}
    missing = [name for name, value in values.items() if not isinstance(value, str | int) or not str(value).strip()]
    if missing:
        return BadRow(line, f"no {', '.join(missing)}")
    try:
        day = datetime.fromisoformat(str(time).strip()).date().toordinal()
    except ValueError:
        return BadRow(line, f"time {str(time)[:40]!r} is not ISO 8601")
    return Row(line, str(participant).strip(), str(group).strip(), str(time).strip(), day, str(message), verdict)


def _verdict(answer: object, threshold: float) -> Verdict | None:
    """Our answer record (`sentiment`, `confidence`), or BlazingText's (`label`, `prob`) judged at `threshold`."""
    if isinstance(answer, list) and len(answer) == 1:
        answer = answer[0]
    if not isinstance(answer, dict):
        return None
    if isinstance(answer.get("sentiment"), str) and isinstance(answer.get("confidence"), int | float):
        return Verdict(answer["sentiment"], float(answer["confidence"]))
    labels, probs = answer.get("label"), answer.get("prob")
    if not (isinstance(labels, list) and isinstance(probs, list) and labels and probs):
        return None
    label, prob = str(labels[0]).removeprefix("__label__"), float(probs[0])
    return Verdict(label if prob >= threshold else "unrecognized", prob)


def rows_at(path: Path, lines: set[int]) -> dict[int, Row]:
    """The rows starting on `lines`, read again: messages are not kept in memory for the whole file."""
    found = {}
    for row in read_rows(path, []):
        if row.line in lines:
            found[row.line] = row
    return found
