"""The training job: `train` as SageMaker runs it, or locally with flags.

Reads hyperparameters and channels (`train` required; `validation` and `test`
optional), trains the chosen algorithm, evaluates, and writes the model and its
manifest to the model dir and metrics.json to the output data dir. A failure
writes its reason to `<output dir>/failure` (SageMaker's FailureReason) and
exits non-zero.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path

from container.environment import ConfigurationError, TrainingEnvironment
from model import predictor
from model.artifact import write_manifest
from model.context import TrainingContext, TrainingInterrupted
from model.datasets import DataError, Example, read_path
from model.evaluation import evaluate, metric_lines
from model.hyperparameters import HyperparameterError, unquote

EVALUATED_CHANNELS = ("validation", "test")
KNOWN_CHANNELS = ("train", *EVALUATED_CHANNELS)


class TrainingError(Exception):
    """A reason the job cannot succeed, written as its FailureReason."""


def log(line: str) -> None:
    print(line, flush=True)


def run(env: TrainingEnvironment, stop_requested=lambda: False) -> dict:
    """Train, evaluate and save; return the manifest written."""
    started = time.monotonic()
    raw = dict(env.hyperparameters)
    algorithm_name = str(unquote(raw.pop("algorithm", predictor.DEFAULT_ALGORITHM))).strip().lower()
    try:
        algorithm = predictor.algorithm(algorithm_name)
    except ValueError as error:
        raise HyperparameterError(str(error)) from None
    params = algorithm.SPEC.parse(raw)
    log(f"algorithm={algorithm_name} hyperparameters={json.dumps(params)}")

    data, summaries = read_channels(env)
    labels = sorted({e.label for e in data["train"]})
    if len(labels) < 2:
        raise TrainingError(f"the train channel holds a single label {labels}: a classifier needs at least two")
    prepare_dir(env.model_dir, "model dir")

    with tempfile.TemporaryDirectory(prefix="train-") as work_dir:
        context = TrainingContext(work_dir=Path(work_dir), checkpoint_dir=env.checkpoint_dir,
                                  threads=env.num_cpus, log=log, stop_requested=stop_requested)
        model = algorithm.train(data["train"], data.get("validation"), params, context)
    training_seconds = time.monotonic() - started

    metrics = {}
    for channel in EVALUATED_CHANNELS:
        if channel in data:
            examples = data[channel]
            predicted = [p.labels[0] for p in model.predict([e.text for e in examples], k=1)]
            metrics[channel] = evaluate([e.label for e in examples], predicted, model.labels)
            for line in metric_lines(channel, metrics[channel]):
                log(line)

    model_files = model.save(env.model_dir)
    manifest = write_manifest(
        env.model_dir, algorithm=algorithm_name, labels=model.labels,
        preprocessing=model.manifest["preprocessing"], **model_files,
        hyperparameters=params, metrics={c: {k: m[k] for k in ("examples", "accuracy", "macro_f1")}
                                         for c, m in metrics.items()},
        data=summaries, training_seconds=round(training_seconds, 1))
    prepare_dir(env.output_data_dir, "output data dir")
    (env.output_data_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    size = sum(p.stat().st_size for p in env.model_dir.rglob("*") if p.is_file())
    log(f"training complete in {training_seconds:.1f} s: model {manifest['model_version']} "
        f"({size / 1e6:.1f} MB) in {env.model_dir}")
    return manifest


def read_channels(env: TrainingEnvironment) -> tuple[dict[str, list[Example]], dict]:
    if "train" not in env.channels:
        raise TrainingError("no train channel: put training files in /opt/ml/input/data/train/ "
                            f"or set SM_CHANNEL_TRAIN (channels found: {sorted(env.channels) or 'none'})")
    data, summaries = {}, {}
    for name, path in env.channels.items():
        if name not in KNOWN_CHANNELS:
            log(f"ignoring channel {name!r}: this job reads {', '.join(KNOWN_CHANNELS)}")
            continue
        if not path.exists():
            raise TrainingError(f"channel {name!r}: {path} does not exist")
        examples, report = read_path(path)
        data[name], summaries[name] = examples, report.summary()
        skipped = f", skipped {dict(report.skipped)}" if report.skipped else ""
        log(f"channel {name}: {report.rows} rows {dict(sorted(report.labels.items()))}{skipped}")
    return data, summaries


def prepare_dir(path: Path, what: str) -> None:
    """Create `path` and check it is writable now, not after hours of training."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        raise TrainingError(f"cannot write to the {what} {path}: {error.strerror}") from None


def write_failure(env_output_dir: Path, reason: str) -> None:
    """SageMaker shows the first 1024 characters of this file as the job's FailureReason."""
    try:
        env_output_dir.mkdir(parents=True, exist_ok=True)
        (env_output_dir / "failure").write_text(reason[:1024], encoding="utf-8")
    except OSError as error:
        print(f"train: cannot write the failure file in {env_output_dir}: {error}", file=sys.stderr)


def _local_flags(argv: list[str]) -> None:
    """Flags for local use, turned into the SM_* variables SageMaker would set."""
    parser = argparse.ArgumentParser(
        prog="train", description="Train a sentiment model, as SageMaker's `docker run IMAGE train` does. "
                                  "Without flags: /opt/ml, or the SM_* variables.")
    for channel in KNOWN_CHANNELS:
        parser.add_argument(f"--{channel}", metavar="PATH", help=f"file or folder of the {channel} channel")
    parser.add_argument("--model-dir", metavar="DIR", help="where the model goes (SM_MODEL_DIR)")
    parser.add_argument("--output-dir", metavar="DIR", help="failure file and metrics (SM_OUTPUT_DIR)")
    parser.add_argument("--checkpoint-dir", metavar="DIR", help="checkpoints (SM_CHECKPOINT_DIR)")
    parser.add_argument("-p", "--hyperparameter", action="append", default=[], metavar="NAME=VALUE",
                        help="e.g. -p algorithm=lstm -p epochs=3 (repeatable)")
    args = parser.parse_args(argv)
    channels = [c for c in KNOWN_CHANNELS if getattr(args, c)]
    for channel in channels:
        os.environ[f"SM_CHANNEL_{channel.upper()}"] = str(Path(getattr(args, channel)).resolve())
    if channels:
        os.environ["SM_CHANNELS"] = json.dumps(channels)
    for flag, variable in (("model_dir", "SM_MODEL_DIR"), ("output_dir", "SM_OUTPUT_DIR"),
                           ("checkpoint_dir", "SM_CHECKPOINT_DIR")):
        if getattr(args, flag):
            os.environ[variable] = str(Path(getattr(args, flag)).resolve())
    if args.output_dir:
        os.environ["SM_OUTPUT_DATA_DIR"] = str(Path(args.output_dir).resolve() / "data")
    for item in args.hyperparameter:
        name, sep, value = item.partition("=")
        if not sep:
            parser.error(f"-p {item!r}: expected NAME=VALUE")
        os.environ[f"SM_HP_{name.upper()}"] = value


def main(argv: list[str] | None = None) -> int:
    _local_flags(sys.argv[1:] if argv is None else argv)
    output_dir = Path(os.environ.get("SM_OUTPUT_DIR", "/opt/ml/output"))
    stopping = []
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.append(signum))
    try:
        env = TrainingEnvironment.from_env()
        output_dir = env.output_dir
        run(env, stop_requested=lambda: bool(stopping))
        return 0
    except TrainingInterrupted as stop:
        # A stop (or spot interruption) is not a failure: the checkpoint lets a restarted job resume.
        print(f"train: stopped on SIGTERM: {stop}", flush=True)
        return 128 + signal.SIGTERM
    except (ConfigurationError, HyperparameterError, DataError, TrainingError, ValueError) as error:
        reason = f"{type(error).__name__}: {error}"
    except Exception as error:
        traceback.print_exc()
        reason = f"unexpected {type(error).__name__}: {error} (traceback in the job log)"
    print(f"train: failed: {reason}", file=sys.stderr, flush=True)
    write_failure(output_dir, reason)
    return 1
