"""The training job: `train` as SageMaker runs it, or locally with flags.

Reads hyperparameters and channels (`train` required; `hand_labelled` (sets a person
labelled), `validation`, `test`, `feedback` (the review loop's labelled messages) and
`previous` (the model being replaced) optional), runs the ML job (`model/job.py`: train,
weigh against the lexicon, evaluate, choose the unrecognized threshold), and writes the model and its
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
from collections.abc import Mapping
from pathlib import Path

from container.environment import OPT_ML, ConfigurationError, TrainingEnvironment
from model import job, predictor
from model.artifact import model_files, write_manifest
from model.context import TrainingContext, TrainingInterrupted
from model.datasets import DataError, Example, read_path
from model.hyperparameters import HyperparameterError, unquote

DATA_CHANNELS = ("train", job.HAND_LABELLED, "feedback", *job.EVALUATED_CHANNELS)
FAILURE_FILE = "failure"
PREVIOUS_CHANNEL = "previous"  # the model (or just the manifest.json) being replaced, for comparison
JOB_SPEC = job.SPEC


class TrainingError(Exception):
    """A reason the job cannot succeed, written as its FailureReason."""


def channel_flag(channel: str) -> str:
    """The command-line flag of a channel, here and in container/deploy.py: hand_labelled -> --hand-labelled."""
    return "--" + channel.replace("_", "-")


def log(line: str) -> None:
    print(line, flush=True)


def parse_hyperparameters(raw: dict) -> tuple[str, dict, dict]:
    """(algorithm name, its hyperparameters, the job's hyperparameters), all validated."""
    raw = dict(raw)
    name = str(unquote(raw.pop("algorithm", predictor.DEFAULT_ALGORITHM))).strip().lower()
    try:
        spec = predictor.algorithm(name).SPEC
    except ValueError as error:
        raise HyperparameterError(str(error)) from None
    job_raw = {key: raw.pop(key) for key in list(raw) if key in JOB_SPEC.params}
    return name, spec.parse(raw), JOB_SPEC.parse(job_raw)


def run(env: TrainingEnvironment, stop_requested=lambda: False) -> dict:
    """Train, evaluate, choose the unrecognized threshold and save; return the manifest written."""
    started = time.monotonic()
    algorithm_name, params, job_params = parse_hyperparameters(env.hyperparameters)
    log(f"algorithm={algorithm_name} hyperparameters={json.dumps({**params, **job_params})}")

    data, summaries = read_channels(env)
    labels = sorted({e.label for e in data["train"]})
    if len(labels) < 2:
        raise TrainingError(f"the train channel holds a single label {labels}: a classifier needs at least two")
    # Both output folders are checked now, not after hours of training.
    prepare_dir(env.model_dir, "model dir")
    prepare_dir(env.output_data_dir, "output data dir")
    with tempfile.TemporaryDirectory(prefix="train-") as work_dir:
        context = TrainingContext(work_dir=Path(work_dir), checkpoint_dir=env.checkpoint_dir,
                                  threads=env.num_cpus, log=log, stop_requested=stop_requested)
        result = job.run(algorithm_name, params, job_params, data, context)
    training_seconds = time.monotonic() - started
    model, metrics = result.model, result.metrics
    if PREVIOUS_CHANNEL in env.channels:
        path = env.channels[PREVIOUS_CHANNEL]
        try:
            job.compare_with_previous(path if path.is_dir() else path.parent, data, metrics, log)
        except FileNotFoundError as error:
            raise TrainingError(f"channel {PREVIOUS_CHANNEL!r}: {error}") from None

    saved = model.save(env.model_dir)
    manifest = write_manifest(
        env.model_dir, algorithm=algorithm_name, labels=result.trained.labels,
        preprocessing=model.manifest["preprocessing"], **saved, threshold=result.threshold,
        hyperparameters={**result.trained.manifest.get("hyperparameters", params), **job_params},
        metrics={c: {k: v for k, v in m.items() if k not in ("per_label", "confusion")} for c, m in metrics.items()},
        data=summaries, lexicon_training_rows=result.lexicon_rows,
        account_training_rows=result.account_rows, training_seconds=round(training_seconds, 1))
    (env.output_data_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    size = sum((env.model_dir / name).stat().st_size for name in model_files(manifest))
    log(f"training complete in {training_seconds:.1f} s: model {manifest['model_version']} "
        f"({size / 1e6:.1f} MB) in {env.model_dir}")
    return manifest


def read_channels(env: TrainingEnvironment) -> tuple[dict[str, list[Example]], dict]:
    if "train" not in env.channels:
        raise TrainingError("no train channel: put training files in /opt/ml/input/data/train/ "
                            f"or set SM_CHANNEL_TRAIN (channels found: {sorted(env.channels) or 'none'})")
    data, summaries = {}, {}
    for name, path in env.channels.items():
        if name == PREVIOUS_CHANNEL:
            continue
        if name not in DATA_CHANNELS:
            log(f"ignoring channel {name!r}: this job reads {', '.join((*DATA_CHANNELS, PREVIOUS_CHANNEL))}")
            continue
        if not path.exists():
            raise TrainingError(f"channel {name!r}: {path} does not exist")
        examples, report = read_path(path)
        data[name], summaries[name] = examples, report.summary()
        skipped = f", skipped {dict(report.skipped)}" if report.skipped else ""
        legacy = f", {report.cp1252_lines} lines not UTF-8 read as cp1252" if report.cp1252_lines else ""
        log(f"channel {name}: {report.rows} rows {dict(sorted(report.labels.items()))}{skipped}{legacy}")
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
        (env_output_dir / FAILURE_FILE).write_text(reason[:1024], encoding="utf-8")
    except OSError as error:
        print(f"train: cannot write the failure file in {env_output_dir}: {error}", file=sys.stderr)


def local_environment(argv: list[str], base: Mapping[str, str]) -> dict[str, str]:
    """`base` (the process's environment) plus the SM_* variables SageMaker would set for these
    local flags. A local run keeps everything under the folders it was given: without
    --output-dir the output goes beside the model dir, without --checkpoint-dir into the output dir."""
    parser = argparse.ArgumentParser(
        prog="train", description="Train a sentiment model, as SageMaker's `docker run IMAGE train` does. "
                                  "Without flags: /opt/ml, or the SM_* variables.")
    for channel in (*DATA_CHANNELS, PREVIOUS_CHANNEL):
        parser.add_argument(channel_flag(channel), dest=channel, metavar="PATH",
                            help=f"file or folder of the {channel} channel")
    parser.add_argument("--model-dir", metavar="DIR", help="where the model goes (SM_MODEL_DIR)")
    parser.add_argument("--output-dir", metavar="DIR",
                        help="failure file and metrics (SM_OUTPUT_DIR; default: beside --model-dir)")
    parser.add_argument("--checkpoint-dir", metavar="DIR",
                        help="checkpoints (SM_CHECKPOINT_DIR; default: in the output dir when it is given)")
    parser.add_argument("-p", "--hyperparameter", action="append", default=[], metavar="NAME=VALUE",
                        help="e.g. -p algorithm=lstm -p epochs=3 (repeatable)")
    args = parser.parse_args(argv)
    env = dict(base)
    channels = [c for c in (*DATA_CHANNELS, PREVIOUS_CHANNEL) if getattr(args, c)]
    for channel in channels:
        env[f"SM_CHANNEL_{channel.upper()}"] = str(Path(getattr(args, channel)).resolve())
    if channels:
        env["SM_CHANNELS"] = json.dumps(channels)
    model_dir = Path(args.model_dir).resolve() if args.model_dir else None
    output_dir = Path(args.output_dir).resolve() if args.output_dir else model_dir and model_dir.parent / "output"
    checkpoint_dir = Path(args.checkpoint_dir).resolve() if args.checkpoint_dir else \
        output_dir and output_dir / "checkpoints"
    for variable, path in (("SM_MODEL_DIR", model_dir), ("SM_OUTPUT_DIR", output_dir),
                           ("SM_OUTPUT_DATA_DIR", output_dir and output_dir / "data"),
                           ("SM_CHECKPOINT_DIR", checkpoint_dir)):
        if path:
            env[variable] = str(path)
    for item in args.hyperparameter:
        name, sep, value = item.partition("=")
        if not sep:
            parser.error(f"-p {item!r}: expected NAME=VALUE")
        env[f"SM_HP_{name.upper()}"] = value
    return env


def main(argv: list[str] | None = None) -> int:
    variables = local_environment(sys.argv[1:] if argv is None else argv, os.environ)
    stopping = []
    previous_handler = signal.signal(signal.SIGTERM, lambda signum, frame: stopping.append(signum))
    try:
        return _run_job(variables, stop_requested=lambda: bool(stopping))
    finally:
        signal.signal(signal.SIGTERM, previous_handler)


def _run_job(variables: Mapping[str, str], stop_requested) -> int:
    """The job's exit code: 0 done, 1 failed (with a FailureReason), 143 stopped by SIGTERM."""
    output_dir = Path(variables.get("SM_OUTPUT_DIR", OPT_ML / "output"))  # for a failure before env is read
    try:
        env = TrainingEnvironment.from_env(variables)
        output_dir = env.output_dir
        # A failure file left by an earlier run in the same folder must not outlive this one.
        (output_dir / FAILURE_FILE).unlink(missing_ok=True)
        run(env, stop_requested)
        return 0
    except TrainingInterrupted as stop:
        # A stop (or spot interruption) is not a failure: the checkpoint lets a restarted job resume.
        print(f"train: stopped on SIGTERM: {stop}", flush=True)
        return 128 + signal.SIGTERM
    except (ConfigurationError, HyperparameterError, DataError, TrainingError, ValueError) as error:
        reason = f"{type(error).__name__}: {error}"
    except Exception as error:  # any crash must still leave a FailureReason
        traceback.print_exc()
        reason = f"unexpected {type(error).__name__}: {error} (traceback in the job log)"
    print(f"train: failed: {reason}", file=sys.stderr, flush=True)
    write_failure(output_dir, reason)
    return 1
