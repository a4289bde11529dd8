"""`train` failing as SageMaker expects, on real /opt/ml-shaped folders: a reason in output/failure and on
stderr, for bad hyperparameters, data and folders, before any training where it can; rows it skips, reported."""

from __future__ import annotations

import json
import os

import pytest
from conftest import FAST_FASTTEXT, sample_split


@pytest.mark.parametrize("hyperparameters, says", [
    ({"epochs": "five"}, "epochs='five' is not a valid int"),
    ({"early_stopping": "maybe"}, "early_stopping='maybe'"),
    ({"learning_rate": "-1"}, "learning_rate='-1' is out of range"),
    ({"mode": "skipgram"}, "allowed: supervised"),
    ({"epoch": "5"}, "unknown hyperparameter 'epoch'"),
    ({"algorithm": "xgboost"}, "unknown algorithm 'xgboost'"),
    # With the lexicon on, a job without a validation channel holds part of train out instead.
    ({"early_stopping": "True", "lexicon": "false"}, "needs a validation channel"),
    # NaN compares false with every bound: it must not slip past the range checks.
    ({"learning_rate": "nan"}, "learning_rate='nan' is not a valid float"),
    ({"max_unrecognized": "NaN"}, "max_unrecognized='NaN' is not a valid float"),
    ({"algorithm": "lstm", "dropout": "nan"}, "dropout='nan' is not a valid float"),
    ({"algorithm": "lstm", "grad_clip": "inf"}, "grad_clip='inf' is not a valid float"),
    ({"algorithm": "lstm", "hidden_dim": "0"}, "hidden_dim='0' is out of range"),
    ({"algorithm": "lstm", "dropout": "1.5"}, "dropout='1.5' is out of range"),
    ({"algorithm": "lstm", "bidirectional": "maybe"}, "bidirectional='maybe'"),
    ({"algorithm": "lstm", "batch_size": "lots"}, "batch_size='lots' is not a valid int"),
    ({"algorithm": "lstm", "hidden": "64"}, "unknown hyperparameter 'hidden'"),
])
def test_bad_hyperparameters_fail_the_job_naming_them(opt_ml, hyperparameters, says):
    opt_ml.hyperparameters(hyperparameters)
    opt_ml.channel("train", sample_split()["train"][:200] + sample_split()["train"][-200:])
    result = opt_ml.train()
    assert result.returncode != 0
    assert says in opt_ml.failure
    assert says in result.stderr


def test_a_failure_file_from_an_earlier_run_does_not_outlive_a_successful_one(opt_ml):
    opt_ml.hyperparameters({**FAST_FASTTEXT, "epochs": "1"})
    opt_ml.channel("train", sample_split()["train"])
    (opt_ml.output_dir).mkdir(parents=True, exist_ok=True)
    (opt_ml.output_dir / "failure").write_text("ValueError: an earlier run failed")
    assert opt_ml.train().returncode == 0
    assert opt_ml.failure is None


def test_an_input_config_channel_that_is_not_an_object_fails_saying_what_it_must_be(opt_ml):
    opt_ml.hyperparameters({})
    opt_ml.channel("train", sample_split()["train"][:100])
    (opt_ml.root / "input/config/inputdataconfig.json").write_text('{"train": 5}')
    assert opt_ml.train().returncode != 0
    assert "channel 'train' must map to an object" in opt_ml.failure


def test_no_train_channel(opt_ml):
    opt_ml.hyperparameters({})
    opt_ml.channel("validation", sample_split()["validation"])
    result = opt_ml.train()
    assert result.returncode != 0
    assert "no train channel" in opt_ml.failure


@pytest.mark.parametrize("content, says", [
    (b"", "holds no data files"),
    (b"\x00\x01\x02binary", "binary data"),
    (b"just some text\nwithout labels\n", "unusable"),
])
def test_unusable_data_fails_with_the_file_and_reason(opt_ml, content, says):
    opt_ml.hyperparameters({})
    folder = opt_ml.root / "input/data/train"
    folder.mkdir(parents=True)
    if content:
        (folder / "data.bin").write_bytes(content)
    result = opt_ml.train()
    assert result.returncode != 0
    assert says in opt_ml.failure


def test_single_class_fails(opt_ml):
    opt_ml.hyperparameters({})
    opt_ml.channel("train", [line for line in sample_split()["train"] if line.startswith("__label__positive")])
    assert opt_ml.train().returncode != 0
    assert "single label" in opt_ml.failure


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_model_dir_fails_before_training(opt_ml):
    opt_ml.hyperparameters({})
    opt_ml.channel("train", sample_split()["train"])
    opt_ml.model_dir.mkdir(parents=True)
    opt_ml.model_dir.chmod(0o500)
    assert opt_ml.train().returncode != 0
    assert "cannot write to the model dir" in opt_ml.failure


def test_model_dir_that_is_a_file_fails_before_training(opt_ml):
    opt_ml.hyperparameters({})
    opt_ml.channel("train", sample_split()["train"])
    opt_ml.model_dir.parent.mkdir(parents=True, exist_ok=True)
    opt_ml.model_dir.write_text("not a folder")
    result = opt_ml.train()
    assert result.returncode != 0
    assert "cannot write to the model dir" in opt_ml.failure
    assert "epoch 1/" not in result.stdout  # failed before training


def test_malformed_rows_are_skipped_and_reported(opt_ml):
    opt_ml.hyperparameters({**FAST_FASTTEXT, "epochs": "1"})
    opt_ml.channel("train", [*sample_split()["train"], "__label__positive", "no label here",
                             "__label__a __label__b two labels"])
    result = opt_ml.train()
    assert result.returncode == 0, result.stderr
    assert "skipped" in result.stdout
    manifest = json.loads((opt_ml.model_dir / "manifest.json").read_text())
    assert sum(manifest["data"]["train"]["skipped"].values()) == 3


def test_unwritable_output_data_dir_fails_before_training(opt_ml):
    opt_ml.hyperparameters({})
    opt_ml.channel("train", sample_split()["train"])
    opt_ml.output_dir.mkdir(parents=True)
    (opt_ml.output_dir / "data").write_text("a file where the output data folder should be")
    result = opt_ml.train()
    assert result.returncode != 0
    assert "cannot write to the output data dir" in opt_ml.failure
    assert "epoch 1/" not in result.stdout
