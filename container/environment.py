"""Every path and environment variable of SageMaker's container contract, read in one place.

SageMaker's `/opt/ml` layout is the default; each location can be moved with the
`SM_*` variables of AWS's sagemaker-training toolkit, so `train` and `serve` run
on any folder (tests, a laptop). Our own knobs start with `SENTIMENT_`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sagemaker_inference import parameters

from model.hyperparameters import parse_bool
from model.threshold import parse_threshold

OPT_ML = Path("/opt/ml")
REALTIME_MAX_PAYLOAD_MB = 6  # SageMaker's real-time body limit: 6 MB = 6,291,456 bytes
BATCH_MAX_PAYLOAD_MB = 100
DEFAULT_PORT = 8080


class ConfigurationError(ValueError):
    """An environment variable or config file that cannot be used; the message names it."""


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 1, maximum: int | None = None) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name}={raw!r} is not a whole number") from None
    if value < minimum or (maximum is not None and value > maximum):
        raise ConfigurationError(f"{name}={raw!r} must be between {minimum} and {maximum or 'any'}")
    return value


def _bool(env: Mapping[str, str], name: str) -> bool:
    raw = env.get(name, "").strip()
    try:
        return parse_bool(raw) if raw else False
    except ValueError:
        raise ConfigurationError(f"{name}={raw!r} must be true or false") from None


def _json_file(path: Path) -> dict:
    if not path.exists():
        return {}
    try:
        value = json.loads(path.read_text(encoding="utf-8") or "{}")
    except json.JSONDecodeError as error:
        raise ConfigurationError(f"{path} is not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise ConfigurationError(f"{path} must hold a JSON object")
    return value


@dataclass(frozen=True)
class TrainingEnvironment:
    """Where a training job reads and writes, and with what settings."""

    hyperparameters: dict
    channels: dict[str, Path]
    input_modes: dict[str, str]
    input_config_dir: Path
    input_data_dir: Path
    model_dir: Path
    output_dir: Path
    output_data_dir: Path
    checkpoint_dir: Path
    num_cpus: int
    current_host: str
    hosts: list[str]

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> TrainingEnvironment:
        config_dir = Path(env.get("SM_INPUT_CONFIG_DIR", OPT_ML / "input/config"))
        data_dir = Path(env.get("SM_INPUT_DATA_DIR", OPT_ML / "input/data"))
        output_dir = Path(env.get("SM_OUTPUT_DIR", OPT_ML / "output"))

        if "SM_HPS" in env:
            try:
                hyperparameters = json.loads(env["SM_HPS"])
            except json.JSONDecodeError as error:
                raise ConfigurationError(f"SM_HPS is not valid JSON: {error}") from None
        else:
            hyperparameters = _json_file(config_dir / "hyperparameters.json")
        for name, value in env.items():  # SM_HP_EPOCHS=10 overrides epochs
            if name.startswith("SM_HP_"):
                hyperparameters[name[len("SM_HP_"):].lower()] = value

        input_config = _json_file(config_dir / "inputdataconfig.json")
        bad = sorted(name for name, cfg in input_config.items() if not isinstance(cfg, dict))
        if bad:
            raise ConfigurationError(f"{config_dir / 'inputdataconfig.json'}: channel {bad[0]!r} must map to an "
                                     'object such as {"ContentType": "text/plain", "TrainingInputMode": "File"}')
        input_modes = {name: str(cfg.get("TrainingInputMode", "File")) for name, cfg in input_config.items()}
        channels = _channels(env, data_dir, input_config, input_modes)

        resources = _json_file(config_dir / "resourceconfig.json")
        return cls(
            hyperparameters=hyperparameters,
            channels=channels,
            input_modes=input_modes,
            input_config_dir=config_dir,
            input_data_dir=data_dir,
            model_dir=Path(env.get("SM_MODEL_DIR", OPT_ML / "model")),
            output_dir=output_dir,
            output_data_dir=Path(env.get("SM_OUTPUT_DATA_DIR", output_dir / "data")),
            checkpoint_dir=Path(env.get("SM_CHECKPOINT_DIR", OPT_ML / "checkpoints")),
            num_cpus=_int(env, "SM_NUM_CPUS", os.cpu_count() or 1),
            current_host=env.get("SM_CURRENT_HOST", resources.get("current_host", "algo-1")),
            hosts=json.loads(env["SM_HOSTS"]) if "SM_HOSTS" in env else resources.get("hosts", ["algo-1"]),
        )


def _channels(env: Mapping[str, str], data_dir: Path, input_config: dict,
              input_modes: dict[str, str]) -> dict[str, Path]:
    """Channel name -> folder (File mode) or FIFO (Pipe mode: `<channel>_0`, read once)."""
    names = json.loads(env["SM_CHANNELS"]) if "SM_CHANNELS" in env else list(input_config)
    names += [n[len("SM_CHANNEL_"):].lower() for n in env if n.startswith("SM_CHANNEL_")]
    if not names and data_dir.is_dir():
        names = [p.name for p in data_dir.iterdir() if p.is_dir()]
    channels = {}
    for name in dict.fromkeys(names):
        path = Path(env.get(f"SM_CHANNEL_{name.upper()}", data_dir / name))
        if input_modes.get(name) == "Pipe" or (not path.exists() and (data_dir / f"{name}_0").exists()):
            path = data_dir / f"{name}_0"
        channels[name] = path
    return channels


@dataclass(frozen=True)
class ServingSettings:
    """How `serve` runs: model location, port, workers, limits, batch transform settings."""

    model_dir: Path
    host: str
    port: int
    workers: int
    threads: int
    math_threads: int
    timeout: int
    max_payload_mb: int
    batch: bool
    batch_strategy: str
    max_concurrent_transforms: int
    program: str
    program_set: bool
    default_accept: str
    log_level: str
    threshold: float | None
    capture_uri: str
    capture_max_bytes: int
    capture_max_seconds: int
    read_timeout: int
    metrics: bool
    api_token: str

    @property
    def code_dir(self) -> Path:
        return self.model_dir / "code"

    @property
    def max_payload_bytes(self) -> int:
        return self.max_payload_mb * 1024 * 1024

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> ServingSettings:
        batch = env.get("SAGEMAKER_BATCH", "").strip().lower() == "true"
        workers = _int(env, parameters.MODEL_SERVER_WORKERS_ENV, os.cpu_count() or 1, maximum=256)
        max_payload_mb = _int(env, parameters.MAX_REQUEST_SIZE, REALTIME_MAX_PAYLOAD_MB,
                              maximum=BATCH_MAX_PAYLOAD_MB)
        strategy = env.get("SAGEMAKER_BATCH_STRATEGY", "MULTI_RECORD").strip().upper()
        if strategy not in ("MULTI_RECORD", "SINGLE_RECORD"):
            raise ConfigurationError(f"SAGEMAKER_BATCH_STRATEGY={strategy!r} must be MULTI_RECORD or SINGLE_RECORD")
        # SageMaker requires MaxConcurrentTransforms x MaxPayloadInMB <= 100.
        concurrent = _int(env, "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS",
                          max(1, min(workers, BATCH_MAX_PAYLOAD_MB // max_payload_mb)))
        if concurrent * max_payload_mb > BATCH_MAX_PAYLOAD_MB:
            raise ConfigurationError(f"SAGEMAKER_MAX_CONCURRENT_TRANSFORMS x SAGEMAKER_MAX_PAYLOAD_IN_MB = "
                                     f"{concurrent} x {max_payload_mb} exceeds SageMaker's limit of 100")
        program = env.get(parameters.USER_PROGRAM_ENV, "").strip()
        return cls(
            model_dir=Path(env.get("SM_MODEL_DIR", OPT_ML / "model")),
            host=env.get("SENTIMENT_BIND_HOST", "0.0.0.0"),
            port=_int(env, parameters.BIND_TO_PORT_ENV, DEFAULT_PORT, maximum=65535),
            workers=workers,
            threads=_int(env, "SENTIMENT_WORKER_THREADS", 4, maximum=256),
            # Per worker, for BLAS and the like: a worker's request threads already use its core.
            math_threads=_int(env, "SENTIMENT_MATH_THREADS", 1, maximum=256),
            # Batch transform waits 600 s for an invocation by default, real-time 60 s.
            timeout=_int(env, parameters.MODEL_SERVER_TIMEOUT_ENV, 600 if batch else 60),
            max_payload_mb=max_payload_mb,
            batch=batch,
            batch_strategy=strategy,
            max_concurrent_transforms=concurrent,
            program=program or "inference.py",
            program_set=bool(program),
            default_accept=env.get(parameters.DEFAULT_INVOCATIONS_ACCEPT_ENV, "").strip(),
            log_level=_log_level(env.get(parameters.LOG_LEVEL_ENV, "")),
            threshold=_threshold(env.get("SENTIMENT_THRESHOLD", "")),
            capture_uri=env.get("SENTIMENT_CAPTURE_URI", "").strip(),
            capture_max_bytes=_int(env, "SENTIMENT_CAPTURE_MAX_BYTES", 16 << 20),
            capture_max_seconds=_int(env, "SENTIMENT_CAPTURE_MAX_SECONDS", 300),
            read_timeout=_int(env, "SENTIMENT_READ_TIMEOUT", 10, maximum=600),
            metrics=_bool(env, "SENTIMENT_METRICS"),
            api_token=env.get("SENTIMENT_API_TOKEN", "").strip(),
        )


def _threshold(raw: str) -> float | None:
    """SENTIMENT_THRESHOLD overrides the threshold the model's manifest records."""
    if not raw.strip():
        return None
    try:
        return parse_threshold(raw)
    except ValueError as error:
        raise ConfigurationError(f"SENTIMENT_THRESHOLD {error}") from None


def _log_level(raw: str) -> str:
    """SageMaker's SDK passes SAGEMAKER_CONTAINER_LOG_LEVEL as a number (20); people write INFO."""
    names = {"10": "DEBUG", "20": "INFO", "30": "WARNING", "40": "ERROR", "50": "CRITICAL"}
    level = names.get(raw.strip(), raw.strip().upper() or "INFO")
    if level not in names.values():
        raise ConfigurationError(f"{parameters.LOG_LEVEL_ENV}={raw!r} must be DEBUG, INFO, WARNING, ERROR "
                                 "or CRITICAL (or 10..50)")
    return level
