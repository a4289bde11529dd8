"""`python -m model.prepare`: raw labelled files -> channel folders train/ validation/ test/.

Any format `model.datasets` reads goes in; BlazingText lines come out, with the
text already cleaned by `clean_text` (tokenized, as SageMaker's built-in
BlazingText expects; our own training cleans again, which changes nothing).
The split is stratified by label and a pure function of the seed.

    python -m model.prepare data.csv semeval/ --out channels/ --labels positive,negative
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from model.datasets import DataError, Example, filter_labels, read_path, stratified_split, write_blazingtext
from model.preprocessing import clean_text

CHANNELS = ("train", "validation", "test")


def prepare(inputs: list[Path], out: Path, train_fraction: float = 0.7, seed: int = 1,
            labels: set[str] | None = None, log=print) -> dict[str, int]:
    """Read, filter, split and write; return the rows written per channel."""
    if not 0 < train_fraction <= 1:
        raise ValueError(f"--train-fraction must be in (0, 1], got {train_fraction}")
    examples, report = read_path(*inputs)
    log(f"read {report.rows} rows from {len(report.files)} files: {dict(sorted(report.labels.items()))}")
    for reason, count in report.skipped.most_common():
        log(f"  dropped {count} rows: {reason}")
    if labels:
        examples, dropped = filter_labels(examples, labels)
        for label, count in sorted(dropped.items()):
            log(f"  dropped {count} rows labelled {label!r} (not in --labels)")
    cleaned, seen, empty, duplicates = [], set(), 0, 0
    for example in examples:
        text = clean_text(example.text)
        if not text:
            empty += 1
        elif (text, example.label) in seen:
            duplicates += 1
        else:
            seen.add((text, example.label))
            cleaned.append(Example(text, example.label))
    if empty:
        log(f"  dropped {empty} rows whose text is empty after cleaning")
    if duplicates:
        log(f"  dropped {duplicates} duplicate rows (same cleaned text and label)")
    if not cleaned:
        raise DataError("no rows left to write")
    rest = (1 - train_fraction) / 2
    parts = stratified_split(cleaned, (train_fraction, rest, rest), seed)
    written = {}
    for channel, part in zip(CHANNELS, parts):
        if part:
            written[channel] = write_blazingtext(part, out / channel / f"{channel}.txt")
            counts = {}
            for example in part:
                counts[example.label] = counts.get(example.label, 0) + 1
            log(f"{channel}: {written[channel]} rows {dict(sorted(counts.items()))} -> {out / channel}")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model.prepare", description=__doc__.split("\n\n")[0])
    parser.add_argument("inputs", nargs="+", type=Path, help="files or folders, in any supported format")
    parser.add_argument("--out", type=Path, required=True, help="folder to write train/ validation/ test/ into")
    parser.add_argument("--train-fraction", type=float, default=0.7,
                        help="share for train; validation and test split the rest evenly (default 0.7)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--labels", help="comma-separated labels to keep, e.g. positive,negative")
    args = parser.parse_args(argv)
    labels = set(args.labels.split(",")) if args.labels else None
    try:
        prepare(args.inputs, args.out, args.train_fraction, args.seed, labels)
    except (DataError, ValueError) as error:
        print(f"prepare: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
