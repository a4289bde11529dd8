"""Unit tests of the SageMaker side: content types, custom attributes, environment and serving settings."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from werkzeug.datastructures import MIMEAccept
from werkzeug.http import parse_accept_header

from container import content_types
from container.environment import ConfigurationError, ServingSettings, TrainingEnvironment
from container.formats import parse_custom_attributes
from container.training import local_environment

# --- content types and attributes -------------------------------------------------


def test_content_type_aliases():
    assert content_types.canonical("application/x-ndjson") == "application/jsonlines"
    assert content_types.canonical("text/csv") == "text/csv"


@pytest.mark.parametrize("accept, expected", [
    (None, "application/json"),
    ("", "application/json"),
    ("*/*", "application/json"),
    ("text/csv", "text/csv"),
    ("text/*", "text/csv"),
    ("image/png, application/jsonlines;q=0.2", "application/jsonlines"),
    ("text/csv;q=0.1, application/json", "application/json"),
    ("image/png", None),
    ("text/csv;q=0", None),
    ("text/*, text/csv;q=0", None),  # the client refuses the only text type we write
    ("application/x-ndjson", "application/jsonlines"),
])
def test_accept_negotiation(accept, expected):
    assert content_types.negotiate(parse_accept_header(accept, MIMEAccept), "application/json") == expected


def test_custom_attributes():
    assert parse_custom_attributes("k=2; threshold=0.9,trace") == {"k": "2", "threshold": "0.9"}
    assert parse_custom_attributes(None) == {}


# --- environment ------------------------------------------------------------


def test_training_environment_defaults_to_opt_ml_layout(tmp_path):
    config = tmp_path / "input/config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text(json.dumps({"epochs": "3"}))
    (config / "inputdataconfig.json").write_text(json.dumps({"train": {"TrainingInputMode": "File"},
                                                             "validation": {"TrainingInputMode": "File"}}))
    (config / "resourceconfig.json").write_text(json.dumps({"current_host": "algo-2", "hosts": ["algo-1", "algo-2"]}))
    env = TrainingEnvironment.from_env({"SM_INPUT_CONFIG_DIR": str(config),
                                        "SM_INPUT_DATA_DIR": str(tmp_path / "input/data"), "SM_HP_SEED": "4"})
    assert env.hyperparameters == {"epochs": "3", "seed": "4"}
    assert env.channels == {"train": tmp_path / "input/data/train", "validation": tmp_path / "input/data/validation"}
    assert env.model_dir == Path("/opt/ml/model")
    assert env.output_dir == Path("/opt/ml/output")
    assert env.checkpoint_dir == Path("/opt/ml/checkpoints")
    assert (env.current_host, env.hosts) == ("algo-2", ["algo-1", "algo-2"])


def test_training_environment_from_sm_variables(tmp_path):
    env = TrainingEnvironment.from_env({
        "SM_HPS": json.dumps({"epochs": "2"}), "SM_CHANNELS": '["train"]', "SM_CHANNEL_TRAIN": "/data/t",
        "SM_MODEL_DIR": "/m", "SM_OUTPUT_DIR": "/o", "SM_CHECKPOINT_DIR": "/c", "SM_NUM_CPUS": "8",
        "SM_INPUT_CONFIG_DIR": str(tmp_path)})
    assert env.hyperparameters == {"epochs": "2"}
    assert env.channels == {"train": Path("/data/t")}
    assert (env.model_dir, env.output_data_dir, env.checkpoint_dir, env.num_cpus) == (
        Path("/m"), Path("/o/data"), Path("/c"), 8)


def test_local_flags_keep_every_path_under_the_folders_given_and_leave_os_environ_alone(tmp_path):
    before = dict(os.environ)
    env = TrainingEnvironment.from_env(local_environment(
        ["--model-dir", str(tmp_path / "out/model"), "-p", "epochs=2", "--train", str(tmp_path)], {}))
    assert (env.model_dir, env.output_dir, env.checkpoint_dir) == (
        tmp_path / "out/model", tmp_path / "out/output", tmp_path / "out/output/checkpoints")
    assert env.hyperparameters == {"epochs": "2"} and env.channels == {"train": tmp_path}
    given = local_environment(["--output-dir", str(tmp_path / "o"), "--checkpoint-dir", str(tmp_path / "c")], {})
    assert (given["SM_OUTPUT_DATA_DIR"], given["SM_CHECKPOINT_DIR"]) == (str(tmp_path / "o/data"), str(tmp_path / "c"))
    assert dict(os.environ) == before


def test_serving_settings():
    settings = ServingSettings.from_env({})
    assert (settings.port, settings.timeout, settings.max_payload_bytes) == (8080, 60, 6_291_456)
    assert settings.log_level == "INFO"
    batch = ServingSettings.from_env({"SAGEMAKER_BATCH": "true", "SAGEMAKER_MAX_PAYLOAD_IN_MB": "50",
                                      "SAGEMAKER_BIND_TO_PORT": "9000", "SAGEMAKER_CONTAINER_LOG_LEVEL": "30",
                                      "SAGEMAKER_MODEL_SERVER_WORKERS": "4"})
    assert (batch.port, batch.timeout, batch.max_payload_bytes, batch.log_level) == (9000, 600, 50 << 20, "WARNING")
    assert batch.max_concurrent_transforms == 2  # 2 x 50 MB <= 100


@pytest.mark.parametrize("env, says", [
    ({"SAGEMAKER_BIND_TO_PORT": "http"}, "SAGEMAKER_BIND_TO_PORT"),
    ({"SAGEMAKER_MAX_PAYLOAD_IN_MB": "500"}, "SAGEMAKER_MAX_PAYLOAD_IN_MB"),
    ({"SAGEMAKER_MAX_PAYLOAD_IN_MB": "60", "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS": "2"}, "exceeds"),
    ({"SAGEMAKER_CONTAINER_LOG_LEVEL": "LOUD"}, "SAGEMAKER_CONTAINER_LOG_LEVEL"),
    ({"SAGEMAKER_BATCH_STRATEGY": "ALL"}, "SAGEMAKER_BATCH_STRATEGY"),
])
def test_invalid_serving_settings_name_the_variable(env, says):
    with pytest.raises(ConfigurationError, match=says):
        ServingSettings.from_env(env)
