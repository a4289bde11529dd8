"""The demo path: serve the model in /opt/ml/model, training the bundled sample first if there is none.

Used by `make run`, `docker run IMAGE sample` and docker-compose's `serve`
service, so a fresh checkout answers on :8080 with one command.
"""

# ruff: noqa: E402 (OpenBLAS's kernels are chosen before the imports below load NumPy)
from __future__ import annotations

import json
import shutil
import sys

from model.threads import choose_openblas_kernels

choose_openblas_kernels()  # as `serve` and `train` do, before anything loads NumPy

from container import server, training
from container.environment import TrainingEnvironment
from model.artifact import MANIFEST
from model.job import BUNDLED, REFERENCE_CHECKINS
from model.predictor import BLAZINGTEXT_MODEL_FILE
from model.prepare import prepare

SAMPLE = BUNDLED / "sentence_polarity.txt"
# Measured on the sample's validation split: BlazingText's lr 0.05 and min_count 5
# underfit 7,500 short sentences; these reach ~0.77 in about 2 s (the job's whole run,
# with the ensemble's LSTM, ~14 s). Unquantized (47 MB of the artifact's 51.5 MB) so the
# demo starts in seconds; quantizing would add half a minute.
SAMPLE_HYPERPARAMETERS = {"epochs": "10", "learning_rate": "0.3", "min_count": "1", "buckets": "100000",
                          "quantize": "false"}


def ensure_model() -> None:
    """Unless the model dir holds a model, lay out an /opt/ml tree for the bundled sample
    (channels and hyperparameters.json, each only where missing) and run the training job
    on it, so `train` can later retrain from the same tree."""
    env = TrainingEnvironment.from_env()
    if (env.model_dir / MANIFEST).exists() or (env.model_dir / BLAZINGTEXT_MODEL_FILE).exists():
        return
    print(f"no model in {env.model_dir}: training the bundled sample ({SAMPLE.name})", flush=True)
    if "train" not in env.channels:
        prepare([SAMPLE], env.input_data_dir)
        validation = env.input_data_dir / "validation"
        for stale in validation.iterdir():
            stale.unlink()
        # Our check-in messages are the validation channel, on which the threshold is chosen, so
        # it fits the messages the product reads, not movie reviews. Raw: VADER reads "!!!".
        shutil.copy(REFERENCE_CHECKINS, validation / REFERENCE_CHECKINS.name)
    config = env.input_config_dir / "hyperparameters.json"
    if not config.exists():
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(json.dumps(SAMPLE_HYPERPARAMETERS, indent=2) + "\n")
    if training.main([]) != 0:
        raise SystemExit("training the sample model failed (see above)")


def main() -> int:
    ensure_model()
    return server.main()


if __name__ == "__main__":
    sys.exit(main())
