"""Readers for labelled text files, and the stratified split.

Every reader yields `Example(text, label)` with the raw text and a bare label
("positive", not "__label__positive"). The format of a file is detected from
its content, so a channel folder may mix formats:

- BlazingText lines: `__label__positive some text`
- augmented-manifest JSON lines: `{"source": "some text", "label": 1}`
- Sentiment140 CSV: 6 quoted columns `polarity,id,date,query,user,text`,
  polarity 0/2/4 -> negative/neutral/positive (latin-1; plain or zipped)
- SemEval TSV: `id<TAB>label<TAB>text`
- CSV `label,text` (an optional header row `label,text` is skipped)

Malformed rows are counted and skipped; a file where they are the majority is
rejected as a whole (`DataError`), since it is most likely in a format we do
not read.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import random
import re
import zipfile
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

LABEL_PREFIX = "__label__"
SENTIMENT140_LABELS = {"0": "negative", "2": "neutral", "4": "positive"}
_UNICODE_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")


class Example(NamedTuple):
    text: str
    label: str


class DataError(ValueError):
    """Input data that cannot be used; the message says which file and why."""


@dataclass
class ReadReport:
    """What reading one or more files gave: rows kept, and rows skipped by reason."""

    rows: int = 0
    labels: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)
    files: list[str] = field(default_factory=list)
    cp1252_lines: int = 0  # lines that were not UTF-8 and were read as cp1252 (latin-1)

    def add(self, other: ReadReport) -> None:
        self.rows += other.rows
        self.cp1252_lines += other.cp1252_lines
        self.labels.update(other.labels)
        self.skipped.update(other.skipped)
        self.files.extend(other.files)

    def summary(self) -> dict:
        return {"rows": self.rows, "labels": dict(sorted(self.labels.items())),
                "skipped": dict(self.skipped), "cp1252_lines": self.cp1252_lines, "files": self.files}


class Malformed(NamedTuple):
    """A row a reader could not use, with the reason counted in the report."""

    reason: str


def read_path(*paths: Path | str) -> tuple[list[Example], ReadReport]:
    """Read files, or every visible file under folders, in any supported format."""
    files = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(p for p in path.rglob("*")
                           if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts))
            if not found:
                raise DataError(f"{path}: the folder holds no data files")
            files += found
        else:
            files.append(path)
    examples: list[Example] = []
    report = ReadReport()
    for file in files:
        file_examples, file_report = read_file(file)
        examples += file_examples
        report.add(file_report)
    return examples, report


def read_file(path: Path) -> tuple[list[Example], ReadReport]:
    """Read one file (a FIFO in Pipe mode works too, it is read once)."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DataError(f"{path}: cannot be read ({error.strerror})") from error
    if data[:4] == b"PK\x03\x04":
        data = _unzip(path, data)
    text, cp1252_lines = _decode(path, data)
    reader = _pick_reader(text)
    report = ReadReport(files=[str(path)], cp1252_lines=cp1252_lines)
    examples = []
    for row in reader(text):
        example = row if isinstance(row, Malformed) else _check(*row)
        if isinstance(example, Malformed):
            report.skipped[example.reason] += 1
            continue
        examples.append(example)
        report.labels[example.label] += 1
    report.rows = len(examples)
    bad = sum(report.skipped.values())
    if not examples or bad > report.rows:
        reasons = ", ".join(f"{n} {why}" for why, n in report.skipped.most_common(3)) or "no rows"
        raise DataError(f"{path}: {bad} of {bad + report.rows} rows are unusable ({reasons}); "
                        "expected BlazingText lines '__label__<label> <text>', JSON lines "
                        "{\"source\": ..., \"label\": ...}, Sentiment140 CSV, SemEval TSV or CSV 'label,text'")
    return examples, report


def _unzip(path: Path, data: bytes) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = [m for m in archive.infolist() if not m.is_dir() and not m.filename.startswith("__MACOSX")]
        if len(members) != 1:
            raise DataError(f"{path}: a zip must hold exactly one data file, it holds {len(members)}")
        return archive.read(members[0])


def _decode(path: Path, data: bytes) -> tuple[str, int]:
    """The text of `data`, and how many of its lines were not UTF-8 and were read as cp1252.

    Line by line: one latin-1 line in a UTF-8 file must not turn the whole file into mojibake.
    Sentiment140 is distributed in latin-1; any byte sequence decodes as cp1252.
    """
    if b"\x00" in data[:4096]:
        raise DataError(f"{path}: binary data, not text")
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    try:
        return data.decode("utf-8"), 0
    except UnicodeDecodeError:
        pass
    lines, legacy = [], 0
    for line in data.split(b"\n"):
        try:
            lines.append(line.decode("utf-8"))
        except UnicodeDecodeError:
            lines.append(line.decode("cp1252", errors="replace"))
            legacy += 1
    return "\n".join(lines), legacy


def _pick_reader(text: str):
    first = next((line for line in text.splitlines() if line.strip()), "")
    if first.startswith(LABEL_PREFIX):
        return _blazingtext_rows
    if first.lstrip().startswith("{"):
        return _manifest_rows
    if first.count("\t") >= 2:
        return _semeval_rows
    row = next(csv.reader([first]), [])
    if len(row) == 6 and row[0] in SENTIMENT140_LABELS:
        return _sentiment140_rows
    return _label_text_rows


Row = tuple[str | None, object] | Malformed  # (label, text) as found in the file, before checks


def _blazingtext_rows(text: str) -> Iterator[Row]:
    for line in text.splitlines():
        if not line.strip():
            continue
        labels = []
        words = line.split()
        while words and words[0].startswith(LABEL_PREFIX):
            labels.append(words.pop(0)[len(LABEL_PREFIX):])
        if len(labels) > 1:
            yield Malformed("more than one label (this classifier is single-label)")
        else:
            yield (labels[0] if labels else None, " ".join(words))


def _manifest_rows(text: str) -> Iterator[Row]:
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            yield Malformed("invalid JSON line")
            continue
        if not isinstance(record, dict):
            yield Malformed("JSON line is not an object")
            continue
        label = record.get("label")
        if isinstance(label, list):  # augmented manifests may carry [label]
            label = label[0] if len(label) == 1 else None
        yield (None if label is None else str(label), record.get("source"))


def _sentiment140_rows(text: str) -> Iterator[Row]:
    for row in csv.reader(io.StringIO(text, newline="")):
        if len(row) != 6:
            yield Malformed("not 6 columns")
            continue
        yield (SENTIMENT140_LABELS.get(row[0].strip()), row[5])


def _semeval_rows(text: str) -> Iterator[Row]:
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = line.split("\t", 2)
        if len(parts) != 3:
            # One SemEval tweet has an embedded newline; its tail is a malformed row.
            yield Malformed("not 3 tab-separated columns")
            continue
        # The 2013 files carry JSON-style escapes such as \u2019 and \u002c.
        yield (parts[1].strip(), _UNICODE_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), parts[2]))


def _label_text_rows(text: str) -> Iterator[Row]:
    for number, row in enumerate(csv.reader(io.StringIO(text, newline=""))):
        if number == 0 and [c.strip().lower() for c in row] == ["label", "text"]:
            continue
        if len(row) < 2:
            yield Malformed("not 'label,text'")
            continue
        # An unquoted comma in the text splits it into more columns: join them back.
        yield (row[0].strip(), ",".join(row[1:]))


def _check(label: str | None, text: object) -> Example | Malformed:
    if not label:
        return Malformed("missing or unknown label")
    if not isinstance(text, str):
        return Malformed("text is missing or not a string")
    text = " ".join(text.split())
    if not text:
        return Malformed("empty text")
    label = label.removeprefix(LABEL_PREFIX)
    if not label or any(c.isspace() for c in label):
        return Malformed("label is empty or has spaces")
    return Example(text, label)


def filter_labels(examples: Iterable[Example], keep: set[str]) -> tuple[list[Example], Counter]:
    """Keep only examples whose label is in `keep`; count the dropped ones by label."""
    kept, dropped = [], Counter()
    for example in examples:
        if example.label in keep:
            kept.append(example)
        else:
            dropped[example.label] += 1
    return kept, dropped


def stratified_split(examples: list[Example], fractions: tuple[float, ...], seed: int) -> list[list[Example]]:
    """Split into len(fractions) parts holding each label in the same proportions.

    The fractions must sum to 1; the split is a pure function of `seed`.
    """
    if abs(sum(fractions) - 1) > 1e-9 or any(f < 0 for f in fractions):
        raise ValueError(f"split fractions must be >= 0 and sum to 1, got {fractions}")
    by_label: dict[str, list[Example]] = {}
    for example in examples:
        by_label.setdefault(example.label, []).append(example)
    rng = random.Random(seed)
    parts: list[list[Example]] = [[] for _ in fractions]
    for label in sorted(by_label):
        group = by_label[label]
        rng.shuffle(group)
        start = 0
        for index, fraction in enumerate(fractions):
            end = len(group) if index == len(fractions) - 1 else start + round(fraction * len(group))
            parts[index] += group[start:end]
            start = end
    for part in parts:
        rng.shuffle(part)
    return parts


def to_blazingtext_line(example: Example) -> str:
    """`__label__<label> <text>` with the text on one line."""
    return f"{LABEL_PREFIX}{example.label} {' '.join(example.text.split())}"


def write_blazingtext(examples: Iterable[Example], path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8") as out:
        for example in examples:
            out.write(to_blazingtext_line(example) + "\n")
            count += 1
    return count
