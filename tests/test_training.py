"""`train` as SageMaker runs it, on real /opt/ml-shaped folders (its failures: test_training_failures.py)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys

import fasttext
import pytest
from conftest import FAST_FASTTEXT, ROOT, SAMPLE, sample_split

from model import fasttext_model, job, lexicon, predictor
from model.artifact import read_manifest


def test_trains_from_string_hyperparameters_and_writes_model_manifest_metrics(fasttext_tree):
    manifest = json.loads((fasttext_tree.model_dir / "manifest.json").read_text())
    assert manifest["algorithm"] == "blazingtext"
    assert manifest["labels"] == ["negative", "positive"]
    assert manifest["preprocessing"] == {"name": "tweet", "version": 5}
    assert manifest["hyperparameters"]["epochs"] == 10
    assert manifest["hyperparameters"]["learning_rate"] == 0.3  # given, so kept
    assert manifest["hyperparameters"]["quantize"] is False
    assert manifest["data"]["train"]["rows"] == len(sample_split()["train"])
    metrics = json.loads((fasttext_tree.output_dir / "data/metrics.json").read_text())
    assert set(metrics) == {"validation", "test"}
    assert metrics["test"]["confusion"]["positive"]["positive"] > 0
    assert set(metrics["test"]["per_label"]["positive"]) == {"precision", "recall", "f1", "support"}
    assert fasttext_tree.failure is None
    # fastText itself reads the artifact.
    model = fasttext.load_model(str(fasttext_tree.model_dir / "model.bin"))
    assert sorted(model.get_labels()) == ["__label__negative", "__label__positive"]


def test_metric_lines_for_sagemaker_regexes(opt_ml):
    opt_ml.hyperparameters({**FAST_FASTTEXT, "epochs": "\"3\""})  # JSON-quoted, as newer SDKs send
    split = sample_split()
    opt_ml.channel("train", split["train"])
    opt_ml.channel("validation", split["validation"])
    result = opt_ml.train()
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    accuracy = [line for line in lines if line.startswith("validation:accuracy=")]
    assert len(accuracy) == 1
    assert 0.5 < float(accuracy[0].split("=")[1]) <= 1
    assert [line for line in lines if line.startswith("epoch 3/3: train:loss=")]
    epochs = [int(line.split()[1].split("/")[0]) for line in lines if line.startswith("epoch ")]
    assert epochs == sorted(set(epochs)), epochs  # each epoch once, with its own figures
    assert "lr=-" not in result.stdout
    assert '"epochs": 3' in result.stdout


def test_default_quantized_model_is_small_and_still_accurate(opt_ml):
    opt_ml.hyperparameters({"learning_rate": "0.3", "epochs": "10", "min_count": "1"})
    split = sample_split()
    opt_ml.channel("train", split["train"])
    opt_ml.channel("test", split["test"])
    result = opt_ml.train()
    assert result.returncode == 0, result.stderr
    size = (opt_ml.model_dir / "model.bin").stat().st_size
    assert size < 20e6, size
    metrics = json.loads((opt_ml.output_dir / "data/metrics.json").read_text())
    assert metrics["test"]["accuracy"] > 0.70
    assert predictor.load(opt_ml.model_dir).predict(["a wonderful film"])[0].labels == ["positive"]


def test_sm_variables_and_local_flags_move_every_path(tmp_path):
    split = sample_split()
    (tmp_path / "mydata").mkdir()
    (tmp_path / "mydata/train.txt").write_text("\n".join(split["train"]) + "\n")
    result = subprocess.run(
        [sys.executable, str(ROOT / "train"), "--train", "mydata/train.txt", "--model-dir", "out/model",
         "--output-dir", "out/output", "-p", "buckets=10000", "-p", "quantize=false", "-p", "epochs=1"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env={k: v for k, v in os.environ.items() if not k.startswith("SM_")})
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out/model/model.bin").exists()
    assert (tmp_path / "out/output/data/metrics.json").exists()


def test_pipe_mode_channel_is_read_from_its_fifo(opt_ml):
    opt_ml.hyperparameters({**FAST_FASTTEXT, "epochs": "1"})
    config = opt_ml.root / "input/config"
    (config / "inputdataconfig.json").write_text(json.dumps({"train": {"TrainingInputMode": "Pipe"}}))
    data = opt_ml.root / "input/data"
    data.mkdir(parents=True)
    fifo = data / "train_0"
    os.mkfifo(fifo)
    process = subprocess.Popen([sys.executable, str(ROOT / "train")], env={**os.environ, **opt_ml.env()},
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    with fifo.open("w") as pipe:  # blocks until train opens it, as SageMaker's pipe does
        pipe.write("\n".join(sample_split()["train"]) + "\n")
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output
    assert f"channel train: {len(sample_split()['train'])} rows" in output


def test_false_is_not_truthy(opt_ml):
    opt_ml.hyperparameters({**FAST_FASTTEXT, "early_stopping": "False", "quantize": "\"False\"", "epochs": "1"})
    opt_ml.channel("train", sample_split()["train"])
    result = opt_ml.train()
    assert result.returncode == 0, result.stderr
    manifest = json.loads((opt_ml.model_dir / "manifest.json").read_text())
    assert manifest["hyperparameters"]["early_stopping"] is False
    assert manifest["hyperparameters"]["quantize"] is False


def test_sagemaker_reserved_hyperparameters_are_ignored(opt_ml):
    opt_ml.hyperparameters({**FAST_FASTTEXT, "epochs": "1", "sagemaker_region": "\"eu-west-1\"",
                            "_tuning_objective_metric": "validation:accuracy"})
    opt_ml.channel("train", sample_split()["train"])
    assert opt_ml.train().returncode == 0


def test_the_models_learn_vaders_words_of_feeling_and_our_accounts_the_sample_lacks(fasttext_tree, opt_ml):
    """"heartbroken" and "landlord" are in no row of the sample; with the lexicon on, VADER's words and
    our own accounts teach them (positive/negative ones: the sample has no neutral label)."""
    sample = SAMPLE.read_text(encoding="utf-8").lower()
    assert "heartbroken" not in sample and "landlord" not in sample
    manifest = read_manifest(fasttext_tree.model_dir)
    assert manifest["lexicon_training_rows"] == len(lexicon.training_examples())
    assert manifest["account_training_rows"] == len(job.own_accounts({"positive", "negative"}))
    model = fasttext_model.load(fasttext_tree.model_dir, manifest)
    assert {"heartbroken", "neg-heartbroken", "landlord"} <= set(model.vocabulary)
    assert model.predict(["heartbroken"])[0].labels == ["negative"]
    # Not with the lexicon off, nor for labels of another meaning ("1"/"0", as augmented manifests have).
    renamed = [line.replace("__label__positive", "__label__1").replace("__label__negative", "__label__0")
               for line in sample_split()["train"]]
    for lexicon_on, lines in (("false", sample_split()["train"]), ("true", renamed)):
        opt_ml.hyperparameters({**FAST_FASTTEXT, "epochs": "1", "lexicon": lexicon_on})
        opt_ml.channel("train", lines)
        result = opt_ml.train()
        assert result.returncode == 0, result.stdout + result.stderr
        assert "VADER's words" not in result.stdout
        manifest = read_manifest(opt_ml.model_dir)
        assert manifest["lexicon_training_rows"] == manifest["account_training_rows"] == 0
        assert not {"heartbroken", "landlord"} & set(fasttext_model.load(opt_ml.model_dir, manifest).vocabulary)


def test_an_ensemble_without_the_lexicon_says_why_it_trained_no_members(opt_ml):
    opt_ml.hyperparameters({**FAST_FASTTEXT, "epochs": "1", "ensemble": "true", "lexicon": "false"})
    opt_ml.channel("train", sample_split()["train"])
    result = opt_ml.train()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ensemble: no members trained" in result.stdout and "needs lexicon=true" in result.stdout
    assert not (opt_ml.model_dir / "lstm.npz").exists()


@pytest.mark.parametrize("ensemble, why", [
    ("true", "(nor the sentence encoder's member, which trains on them too): it needs 1000"),
    ("false", "encoder: no sentence encoder's member: it is one of the ensemble's, and ensemble=false")])
def test_an_encoder_asked_for_but_not_trained_says_why(opt_ml, ensemble, why):
    opt_ml.hyperparameters({**FAST_FASTTEXT, "epochs": "1", "ensemble": ensemble, "encoder": "true"})
    opt_ml.channel("train", sample_split()["train"])  # no hand_labelled channel
    result = opt_ml.train()
    assert result.returncode == 0, result.stdout + result.stderr
    assert why in result.stdout
    assert not (opt_ml.model_dir / "encoder-head.npz").exists()


def test_a_train_channel_too_small_to_hold_validation_out_still_trains(opt_ml):
    opt_ml.hyperparameters({**FAST_FASTTEXT, "epochs": "1"})
    opt_ml.channel("train", ["__label__positive good day", "__label__negative bad day", "__label__positive happy",
                             "__label__negative sad", "__label__positive great", "__label__negative awful"])
    result = opt_ml.train()
    assert result.returncode == 0, opt_ml.failure
    assert "too few train rows to hold any out" in result.stdout


# Reads a channel of 3 × the sample and lets it go, then trains on 125 rows: the 4 MB input
# matrix lands on the memory the reading used.
TRAIN_AFTER_READING = """
import sys
from pathlib import Path
from model import fasttext_model
from model.context import TrainingContext
from model.datasets import read_path
work, sample = Path(sys.argv[1]), Path(sys.argv[2])
(work / "channel.txt").write_text(sample.read_text(encoding="utf-8") * 3, encoding="utf-8")
read_path(work / "channel.txt")
rows = read_path(sample)[0][::60][:125]
params = {**fasttext_model.SPEC.defaults(), "buckets": 10_000, "quantize": False}
fasttext_model.train(rows, None, params, TrainingContext(work_dir=work, threads=1))
"""


def test_fasttext_trains_on_memory_the_process_used_before(tmp_path):
    """fastText 0.9.3 leaves 9/10 of its input matrix uninitialised (one tenth per thread): on
    used memory, not fresh pages, it failed with "Encountered NaN." (CI once; before the fix, 5 seeds of 5)."""
    result = subprocess.run([sys.executable, "-c", TRAIN_AFTER_READING, str(tmp_path), str(SAMPLE)],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "model.bin").exists()


def test_sigterm_during_fasttext_training_stops_the_job_without_a_model(opt_ml):
    """fastText cannot be interrupted mid-run, so it trains in a child process that the job ends."""
    opt_ml.hyperparameters({"epochs": "30", "quantize": "false", "buckets": "2000000", "learning_rate": "0.3"})
    opt_ml.channel("train", sample_split()["train"] * 4)
    process = subprocess.Popen([sys.executable, str(ROOT / "train")], env={**os.environ, **opt_ml.env()},
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in process.stdout:
        if line.startswith("epoch 1/"):
            break
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 143, output
    assert "stopped on SIGTERM" in output
    assert "epoch 30/30" not in output  # stopped during training, not after it
    assert not (opt_ml.model_dir / "model.bin").exists()
    assert opt_ml.failure is None


def test_a_model_is_served_with_the_cleaning_its_manifest_records(fasttext_tree, tmp_path):
    """A model trained with an earlier cleaning (version 3) keeps reading text as it learnt to."""
    folder = tmp_path / "model"
    shutil.copytree(fasttext_tree.model_dir, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / "manifest.json").write_text(json.dumps({**manifest, "preprocessing": {"name": "tweet", "version": 3}}))
    assert predictor.load(fasttext_tree.model_dir).preprocess("Not bad at all") == "not neg-bad at all"
    assert predictor.load(folder).preprocess("Not bad at all") == "not neg-bad neg-at all"


def test_model_version_is_the_model_files_not_other_files_in_the_folder(opt_ml):
    opt_ml.hyperparameters({**FAST_FASTTEXT, "epochs": "1", "seed": "3"})
    opt_ml.channel("train", sample_split()["train"])
    assert opt_ml.train(extra_env={"SM_NUM_CPUS": "1"}).returncode == 0
    first = json.loads((opt_ml.model_dir / "manifest.json").read_text())["model_version"]
    (opt_ml.model_dir / "lstm.npz").write_bytes(b"left over from an earlier run")
    assert opt_ml.train(extra_env={"SM_NUM_CPUS": "1"}).returncode == 0  # same seed, one thread: same bytes
    assert json.loads((opt_ml.model_dir / "manifest.json").read_text())["model_version"] == first
