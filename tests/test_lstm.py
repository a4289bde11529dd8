"""The LSTM algorithm: real `train` runs on the bundled sample, its artifact, and checkpoint/resume/stop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import chainer
import chainer.functions as F
import numpy as np
import pytest
from chainer import serializers
from conftest import FAST_LSTM, JOB_KEYS, ROOT, OptMl, sample_split, sample_tree, trained_tree

from model import lstm, predictor
from model.artifact import read_manifest
from model.context import TrainingContext
from model.datasets import Example
from model.lstm.inference import InferenceNetwork
from model.lstm.network import Classifier, build_network, network_weights
from model.lstm.vocabulary import build_vocabulary, encode, pad
from model.preprocessing import PREPROCESSING, clean_text


def _examples(lines: list[str]) -> list[Example]:
    return [Example(line.split(" ", 1)[1], line.split(" ", 1)[0].removeprefix("__label__")) for line in lines]


def _start(tree: OptMl, log: Path) -> subprocess.Popen:
    stream = log.open("w")
    return subprocess.Popen([sys.executable, str(ROOT / "train")], env={**os.environ, **tree.env()},
                            stdout=stream, stderr=subprocess.STDOUT, cwd=tree.root)


def _wait_for(condition, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, f"train exited with {process.returncode} too early"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _load(tree: OptMl) -> lstm.LSTMPredictor:
    """The LSTM itself, as `lstm.load` reads it (predictor.load may wrap it)."""
    return lstm.load(tree.model_dir, read_manifest(tree.model_dir))


def _weights(tree: OptMl) -> dict[str, np.ndarray]:
    with np.load(tree.model_dir / lstm.WEIGHTS_FILE) as data:
        return {name: data[name] for name in data.files}


def _assert_same_weights(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_trains_writes_model_and_manifest_and_predicts(lstm_tree):
    manifest = json.loads((lstm_tree.model_dir / "manifest.json").read_text())
    assert manifest["algorithm"] == "lstm"
    assert manifest["labels"] == ["negative", "positive"]
    assert manifest["preprocessing"] == {"name": "tweet", "version": 5}
    assert manifest["network"]["hidden_dim"] == 32
    assert manifest["hyperparameters"]["bidirectional"] is True
    assert (lstm_tree.model_dir / manifest["weights_file"]).exists()
    assert len(json.loads((lstm_tree.model_dir / manifest["vocab_file"]).read_text())) == manifest["network"]["n_vocab"]
    metrics = json.loads((lstm_tree.output_dir / "data/metrics.json").read_text())
    assert metrics["test"]["accuracy"] > 0.65, metrics["test"]["accuracy"]
    log = lstm_tree.training_log
    lines = log.splitlines()
    for epoch in (1, 2, 3):
        assert any(line.startswith(f"epoch {epoch}/3: train:loss=") for line in lines), log
        assert any(line.startswith(f"epoch {epoch}/3: validation:accuracy=") for line in lines), log
    assert any(line.startswith("test:accuracy=") for line in lines)


def test_loaded_model_predicts_what_training_evaluated(lstm_tree):
    model = predictor.load(lstm_tree.model_dir)  # as the job evaluated it, whatever wraps the LSTM
    test = _examples(sample_split()["test"])
    predictions = model.predict([e.text for e in test], k=1)
    accuracy = sum(p.labels[0] == e.label for p, e in zip(predictions, test)) / len(test)
    metrics = json.loads((lstm_tree.output_dir / "data/metrics.json").read_text())
    assert accuracy == metrics["test"]["accuracy"]


def test_predict_orders_labels_handles_empty_texts_and_keeps_input_order(lstm_tree):
    model = _load(lstm_tree)
    texts = ["", "   ", "@@@", "a wonderful , moving film", "dull , lifeless and far too long",
             "an utterly unbearable mess of a movie that nobody should ever have to sit through"]
    both = model.predict(texts, k=5)
    assert [len(p.labels) for p in both] == [2] * len(texts)
    for p in both:
        assert sorted(p.labels) == ["negative", "positive"]
        assert p.probs[0] >= p.probs[1]
        assert abs(sum(p.probs) - 1) < 1e-5
    singles = [model.predict([text], k=2)[0] for text in texts]
    for one, batched in zip(singles, both):
        assert one.labels == batched.labels
        np.testing.assert_allclose(one.probs, batched.probs, atol=1e-5)
    assert model.predict([]) == []


def _chainer_probabilities(network: Classifier, model: lstm.LSTMPredictor, texts: list[str]) -> np.ndarray:
    """The Chainer network's softmax in test mode, one forward pass per text (no padding involved)."""
    rows = []
    with chainer.using_config("train", False), chainer.no_backprop_mode():
        for text in texts:
            ids, lengths = pad([encode(model.preprocess(text), model.index, model.max_len)])
            rows.append(F.softmax(network(ids, lengths)).array[0])
    return np.stack(rows)


def test_numpy_inference_gives_the_chainer_networks_probabilities(lstm_tree):
    model = _load(lstm_tree)
    network = build_network(model.dims)
    serializers.load_npz(str(lstm_tree.model_dir / lstm.WEIGHTS_FILE), network)
    texts = [e.text for e in _examples(sample_split()["test"])] + ["", "@@@", "word " * 200]
    expected = _chainer_probabilities(network, model, texts)
    np.testing.assert_allclose(model.probabilities(texts), expected, atol=1e-6)  # batched, padded by length
    np.testing.assert_allclose(np.concatenate([model.probabilities([t]) for t in texts[:50]]), expected[:50],
                               atol=1e-6)


@pytest.mark.parametrize("layers, bidirectional", [(2, True), (2, False), (1, False)])
def test_numpy_inference_matches_chainer_for_other_shapes(layers, bidirectional):
    """Shapes the trained fixture does not have, on freshly initialised weights and the sample's texts."""
    texts = [e.text for e in _examples(sample_split()["test"])]
    vocabulary = build_vocabulary([clean_text(e.text) for e in _examples(sample_split()["train"])], 5000, 1)
    dims = {"n_vocab": len(vocabulary), "n_labels": 2, "embed_dim": 16, "hidden_dim": 8, "layers": layers,
            "bidirectional": bidirectional, "dropout": 0.3}
    np.random.seed(0)
    network = build_network(dims)
    model = lstm.LSTMPredictor(network_weights(network), vocabulary, ["negative", "positive"], dims, 64,
                               {"preprocessing": PREPROCESSING})
    expected = _chainer_probabilities(network, model, texts)
    assert model.network.tables is not None
    np.testing.assert_allclose(model.probabilities(texts), expected, atol=1e-6)
    model.network = InferenceNetwork(model.weights, dims, table_bytes=0)  # a vocabulary too large for the table
    np.testing.assert_allclose(model.probabilities(texts), expected, atol=1e-6)


def test_threads_predicting_at_once_each_get_their_own_texts_answer(lstm_tree):
    model = _load(lstm_tree)
    texts = [e.text for e in _examples(sample_split()["test"])][:64]
    expected = model.probabilities(texts)
    answers: dict[int, np.ndarray] = {}
    start = threading.Barrier(len(texts))

    def ask(row: int) -> None:
        start.wait()
        answers[row] = model.probabilities([texts[row]])[0]

    threads = [threading.Thread(target=ask, args=(row,)) for row in range(len(texts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    np.testing.assert_allclose(np.stack([answers[row] for row in range(len(texts))]), expected, atol=1e-6)


def test_same_seed_gives_identical_weights():
    train = _examples(sample_split()["train"][::4])
    params = lstm.SPEC.parse({k: v for k, v in FAST_LSTM.items() if k not in JOB_KEYS} | {"epochs": "1"})
    weights = []
    for _ in range(2):
        with tempfile.TemporaryDirectory() as work:
            model = lstm.train(train, None, params, TrainingContext(Path(work), None, 2, lambda line: None))
        weights.append(model.weights)
    _assert_same_weights(*weights)
    with tempfile.TemporaryDirectory() as work:
        other = lstm.train(train, None, params | {"seed": 1}, TrainingContext(Path(work), None, 2, lambda line: None))
    assert not np.array_equal(other.weights["encoder/embed/W"], weights[0]["encoder/embed/W"])


def test_the_model_is_the_mean_of_the_last_epochs_weights(tmp_path):
    train = _examples(sample_split()["train"][::4])
    params = lstm.SPEC.parse({k: v for k, v in FAST_LSTM.items() if k not in JOB_KEYS})

    def weights(epochs: int, average_epochs: int) -> dict[str, np.ndarray]:
        run = params | {"epochs": epochs, "average_epochs": average_epochs}
        return lstm.train(train, None, run, TrainingContext(tmp_path, None, 2, lambda line: None)).weights

    first, second = weights(1, 1), weights(2, 1)  # each epoch's own weights (the same seed, the same first epoch)
    averaged = weights(2, 2)
    for name, array in averaged.items():
        assert not np.array_equal(first[name], second[name]), name
        np.testing.assert_allclose(array, (first[name] + second[name]) / 2, rtol=1e-6, atol=1e-7)


# The checkpoint tests' jobs train the sample alone, without VADER's words and our accounts (a third of the rows).
CHECKPOINTED = {**FAST_LSTM, "lexicon": "false"}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> OptMl:
    """A CHECKPOINTED job run to its end, which interrupted ones must end as."""
    return trained_tree(tmp_path_factory, CHECKPOINTED)


def test_killed_job_resumes_from_its_last_checkpoint_and_ends_as_an_uninterrupted_run(uninterrupted, tmp_path):
    tree = sample_tree(tmp_path, CHECKPOINTED)
    checkpoint = tree.root / "checkpoints" / lstm.CHECKPOINT_FILE
    process = _start(tree, tmp_path / "first.log")
    _wait_for(checkpoint.exists, process)
    process.kill()
    process.wait()
    result = tree.train()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "resumed from checkpoint" in result.stdout
    assert "epoch 1/3: train:loss=" not in result.stdout  # epoch 1 was not trained again
    _assert_same_weights(_weights(tree), _weights(uninterrupted))


def test_sigterm_checkpoints_the_epoch_in_progress_and_a_restart_completes_it(uninterrupted, tmp_path):
    tree = sample_tree(tmp_path, CHECKPOINTED)
    log = tmp_path / "first.log"
    process = _start(tree, log)
    _wait_for(lambda: "lstm: " in log.read_text(), process)
    time.sleep(0.3)  # into epoch 1 (2.0 s on this machine), before or after its first minibatches
    sent = time.monotonic()
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 128 + signal.SIGTERM, log.read_text()
    assert time.monotonic() - sent < 10
    assert (tree.root / "checkpoints" / lstm.CHECKPOINT_FILE).exists()
    assert "stop requested in epoch 1" in log.read_text()
    assert tree.failure is None
    result = tree.train()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "resumed from checkpoint" in result.stdout
    assert "epoch 0 complete" in result.stdout  # mid-epoch 1
    _assert_same_weights(_weights(tree), _weights(uninterrupted))


def test_pretraining_starts_the_embeddings_from_fasttext_word_vectors(tmp_path):
    train = _examples(sample_split()["train"][::4])
    params = lstm.SPEC.parse({k: v for k, v in FAST_LSTM.items() if k not in JOB_KEYS} | {"epochs": "1"})
    logged: list[str] = []
    pretrained = lstm.train(train, None, params | {"pretrain_epochs": 1},
                            TrainingContext(tmp_path, None, 2, logged.append))
    assert any(line.startswith("pretrained ") and "word vectors with fastText" in line for line in logged), logged
    plain = lstm.train(train, None, params, TrainingContext(tmp_path, None, 2, lambda line: None))
    assert not np.array_equal(pretrained.weights["encoder/embed/W"], plain.weights["encoder/embed/W"])
    assert np.isfinite(pretrained.weights["encoder/embed/W"]).all()


def test_checkpoint_of_other_hyperparameters_is_not_resumed(tmp_path):
    tree = sample_tree(tmp_path, {**CHECKPOINTED, "epochs": "1"}, {"train": sample_split()["train"]})
    assert tree.train().returncode == 0
    assert (tree.root / "checkpoints" / lstm.CHECKPOINT_FILE).exists()
    tree.hyperparameters({**CHECKPOINTED, "epochs": "1", "seed": "7"})
    result = tree.train()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "other hyperparameters or data" in result.stdout
    assert "starting fresh" in result.stdout
    assert "resumed" not in result.stdout


def test_unwritable_checkpoint_dir_trains_without_checkpoints(tmp_path):
    tree = sample_tree(tmp_path, {**CHECKPOINTED, "epochs": "1"}, {"train": sample_split()["train"]})
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    result = tree.train(extra_env={"SM_CHECKPOINT_DIR": str(blocker / "checkpoints")})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "training without checkpoints" in result.stdout
