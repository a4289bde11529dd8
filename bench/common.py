"""What the accuracy benchmarks share: their flags, the issues' data, and a real `train` run.

Imported first by every bench: it names OpenBLAS's kernels before NumPy loads, as `train` and `serve`
do (model/threads.py), so a bench's own arithmetic is the image's."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from model.threads import choose_openblas_kernels  # noqa: E402

choose_openblas_kernels()

from container.training import channel_flag  # noqa: E402
from model.datasets import Example, filter_labels, read_path, stratified_split  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
POLAR = {"positive", "negative"}


def flags(doc: str, parser: argparse.ArgumentParser | None = None) -> argparse.Namespace:
    """Parse `-p NAME=VALUE` flags (`args.hyperparameter`, the NAME=VALUE items) and any others
    `parser` has; the script's --help is `doc`'s first paragraph. Exits when ../shared/data is missing."""
    parser = parser or argparse.ArgumentParser()
    parser.description = doc.split("\n\n")[0]
    parser.add_argument("-p", "--hyperparameter", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args()
    if not (DATA / "sentiment140").exists():
        sys.exit(f"needs {DATA}")
    return args


def hyperparameter_flags(doc: str) -> list[str]:
    """The `-p NAME=VALUE` items of a script that takes no other flags (see `flags`)."""
    return flags(doc).hyperparameter


def training_data(validation_share: float = 0.0) -> tuple[list[Example], list[Example]]:
    """The issues' training set, Sentiment140's 110k part plus SemEval's positive/negative rows,
    and a stratified, seeded `validation_share` of the SemEval rows held out from it."""
    train, _ = read_path(DATA / "sentiment140/training.110k.processed.noemoticon.csv")
    semeval, _ = filter_labels(read_path(DATA / "semeval2013-2016")[0], POLAR)
    if not validation_share:
        return train + semeval, []
    kept, validation = stratified_split(semeval, (1 - validation_share, validation_share), seed=1)
    return train + kept, validation


def sts_test() -> list[Example]:
    """The Sentiment140 hand-labelled test set, all 498 rows (neutral included)."""
    return read_path(DATA / "sentiment140/testdata.manual.2009.06.14.csv")[0]


def run_train(work: Path, channels: dict[str, Path], hyperparameters: list[str]) -> subprocess.CompletedProcess:
    """`train` on `channels`, writing work/model and work/output; on failure print its log's tail and exit."""
    flags = [f"{channel_flag(name)}={path}" for name, path in channels.items()]
    flags += ["--model-dir", str(work / "model"), "--output-dir", str(work / "output")]
    for item in hyperparameters:
        flags += ["-p", item]
    result = subprocess.run([sys.executable, str(ROOT / "train"), *flags], capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(result.stdout[-2000:] + result.stderr[-2000:])
    return result
