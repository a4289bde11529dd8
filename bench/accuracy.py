"""Accuracy on the Sentiment140 hand-labelled test set, through the real `train` and `serve`.

Trains on the 110k Sentiment140 part plus SemEval's positive/negative rows
(../shared/data), tests on the hand-labelled set's 359 positive/negative
tweets, then serves the model and times `serve` start -> first /ping 200.

    python bench/accuracy.py [-p algorithm=lstm] [-p epochs=3 ...]

Prints accuracy, training time, artifact size and start time; asserts nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
from common import POLAR, ROOT, hyperparameter_flags, run_train, sts_test, training_data

from model.artifact import model_files
from model.datasets import filter_labels, write_blazingtext


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
    hyperparameters = hyperparameter_flags(__doc__)
    with tempfile.TemporaryDirectory(prefix="bench-accuracy-") as tmp:
        work = Path(tmp)
        train, _ = training_data()
        test, _ = filter_labels(sts_test(), POLAR)
        write_blazingtext(train, work / "train/train.txt")
        write_blazingtext(test, work / "test/test.txt")
        print(f"train: {len(train)} rows (Sentiment140 110k + SemEval pos/neg); test: {len(test)} rows (STS)")
        started = time.monotonic()
        run_train(work, {"train": work / "train", "test": work / "test"}, hyperparameters)
        seconds = time.monotonic() - started
        manifest = json.loads((work / "model/manifest.json").read_text())
        metrics = json.loads((work / "output/data/metrics.json").read_text())["test"]
        size = sum((work / "model" / name).stat().st_size for name in model_files(manifest))
        ping = first_ping_seconds(work / "model", work)
        print(f"hyperparameters: {' '.join(hyperparameters) or 'defaults'}")
        print(f"STS test accuracy: {metrics['accuracy']:.4f} ({metrics['examples']} tweets), "
              f"macro F1 {metrics['macro_f1']:.4f}")
        print(f"train wall time: {seconds:.1f} s; artifact: {size / 1e6:.1f} MB; "
              f"serve -> first /ping 200: {ping:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
