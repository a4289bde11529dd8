"""The demo path: serve the model in SM_MODEL_DIR, training the bundled sample first if there is none.

Used by `make run`, `docker run IMAGE sample` and docker-compose's `serve`
service, so a fresh checkout answers on :8080 with one command.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from container import server, training
from model.artifact import MANIFEST
from model.predictor import BLAZINGTEXT_MODEL_FILE
from model.prepare import prepare

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample" / "sentence_polarity.txt"
# Measured on the sample's validation split: BlazingText's lr 0.05 and min_count 5
# underfit 7,500 short sentences; these reach ~0.77 in a few seconds.
SAMPLE_HYPERPARAMETERS = {"epochs": "10", "learning_rate": "0.3", "min_count": "1", "buckets": "200000"}


def ensure_model(model_dir: Path) -> None:
    """Train the bundled sample into `model_dir` unless it already holds a model."""
    if (model_dir / MANIFEST).exists() or (model_dir / BLAZINGTEXT_MODEL_FILE).exists():
        return
    print(f"no model in {model_dir}: training the bundled sample ({SAMPLE.name})", flush=True)
    with tempfile.TemporaryDirectory(prefix="sample-") as work:
        channels = Path(work) / "channels"
        prepare([SAMPLE], channels)
        flags = ["--train", str(channels / "train"), "--validation", str(channels / "validation"),
                 "--test", str(channels / "test"), "--model-dir", str(model_dir), "--output-dir", f"{work}/output"]
        for name, value in SAMPLE_HYPERPARAMETERS.items():
            flags += ["-p", f"{name}={value}"]
        if training.main(flags) != 0:
            raise SystemExit("training the sample model failed (see above)")


def main() -> int:
    model_dir = Path(os.environ.setdefault("SM_MODEL_DIR", "/opt/ml/model"))
    ensure_model(model_dir)
    return server.main()


if __name__ == "__main__":
    sys.exit(main())
