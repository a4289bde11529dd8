"""Accuracy on the Sentiment140 hand-labelled test set, through the real `train` and `serve`.

Trains on the 110k Sentiment140 part plus SemEval's positive/negative rows
(../shared/data), tests on the hand-labelled set's 359 positive/negative
tweets, then serves the model and times `serve` start -> first /ping 200.

    python bench/accuracy.py [-p algorithm=lstm] [-p epochs=3 ...]

Prints accuracy, training time, artifact size and start time; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from model.datasets import filter_labels, read_path, write_blazingtext  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
POLAR = {"positive", "negative"}


def build_channels(channels: Path) -> None:
    train, _ = read_path(DATA / "sentiment140/training.110k.processed.noemoticon.csv")
    semeval, _ = read_path(DATA / "semeval2013-2016")
    train += filter_labels(semeval, POLAR)[0]
    test, _ = filter_labels(read_path(DATA / "sentiment140/testdata.manual.2009.06.14.csv")[0], POLAR)
    write_blazingtext(train, channels / "train/train.txt")
    write_blazingtext(test, channels / "test/test.txt")
    print(f"train: {len(train)} rows (Sentiment140 110k + SemEval pos/neg); test: {len(test)} rows (STS)")


def first_ping_seconds(model_dir: Path, work: Path) -> float:
    env = {**os.environ, "SM_MODEL_DIR": str(model_dir), "SAGEMAKER_BIND_TO_PORT": "18899",
           "SENTIMENT_BIND_HOST": "127.0.0.1"}
    started = time.monotonic()
    server = subprocess.Popen([sys.executable, str(ROOT / "serve")], env=env, cwd=work,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while time.monotonic() - started < 120:
            try:
                if requests.get("http://127.0.0.1:18899/ping", timeout=2).status_code == 200:
                    return time.monotonic() - started
            except requests.ConnectionError:
                time.sleep(0.02)
        raise RuntimeError("serve did not become healthy in 120 s")
    finally:
        server.terminate()
        server.wait(30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-p", "--hyperparameter", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args()
    if not (DATA / "sentiment140").exists():
        print(f"needs {DATA}")
        return 2
    with tempfile.TemporaryDirectory(prefix="bench-accuracy-") as tmp:
        work = Path(tmp)
        build_channels(work / "channels")
        flags = ["--train", str(work / "channels/train"), "--test", str(work / "channels/test"),
                 "--model-dir", str(work / "model"), "--output-dir", str(work / "output")]
        for item in args.hyperparameter:
            flags += ["-p", item]
        started = time.monotonic()
        result = subprocess.run([sys.executable, str(ROOT / "train"), *flags], capture_output=True, text=True)
        seconds = time.monotonic() - started
        if result.returncode != 0:
            print(result.stdout[-3000:], result.stderr[-3000:])
            return 1
        metrics = json.loads((work / "output/data/metrics.json").read_text())["test"]
        size = sum(p.stat().st_size for p in (work / "model").rglob("*") if p.is_file())
        ping = first_ping_seconds(work / "model", work)
        print(f"hyperparameters: {' '.join(args.hyperparameter) or 'defaults'}")
        print(f"STS test accuracy: {metrics['accuracy']:.4f} ({metrics['examples']} tweets), "
              f"macro F1 {metrics['macro_f1']:.4f}")
        print(f"train wall time: {seconds:.1f} s; artifact: {size / 1e6:.1f} MB; "
              f"serve -> first /ping 200: {ping:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
