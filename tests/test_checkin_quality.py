"""Obvious check-in messages are read the right way round: by the sample model `make run`
trains, by a model trained the quick way on little data, and by the default job on all the
shared data. The messages are of our own writing and not in any training or validation file."""

from __future__ import annotations

import random

import pytest
from conftest import OptMl, shared_data

from container import sample
from model import job, predictor
from model.datasets import read_path, to_blazingtext_line
from model.fasttext_model import learning_rate

OBVIOUS = {
    "positive": ["I feel great today", "Had a lovely day with my family", "Really happy and relaxed this evening",
                 "not bad at all", "Feeling good, work went well 😀", "Couldn't be better!"],
    "negative": ["I feel awful and exhausted", "So stressed and anxious about tomorrow",
                 "meh... not great, to be honest", "Sad and lonely today 😢", "Terrible night, I couldn't sleep",
                 "Never felt worse", "I can't stop crying"],
}
NOTHING_TO_GO_ON = ["", "   "]


def check_obvious_messages(model_dir) -> None:
    model = predictor.load(model_dir)
    threshold = model.manifest["threshold"]["value"]
    wrong = []
    for label, texts in OBVIOUS.items():
        for text, answer in zip(texts, model.predict(texts, k=2)):
            assert sum(answer.probs) <= 1 + 1e-9, (text, answer)
            if answer.labels[0] != label or answer.probs[0] < threshold:
                wrong.append((text, answer.labels[0], round(answer.probs[0], 2)))
    assert not wrong, f"threshold {threshold:.2f}: {wrong}"
    for answer in model.predict(NOTHING_TO_GO_ON, k=2):
        assert answer.probs[0] < threshold, answer  # unrecognized, never a confident guess


def test_the_sample_model_reads_obvious_checkins_right(tmp_path, monkeypatch):
    tree = OptMl(tmp_path / "opt/ml")
    for variable, value in tree.env().items():
        monkeypatch.setenv(variable, value)
    sample.ensure_model()
    check_obvious_messages(tree.model_dir)
    # Its validation channel (the check-ins) has neutral messages, so the models learn our neutral accounts too.
    manifest = predictor.load(tree.model_dir).manifest
    assert manifest["account_training_rows"] == len(job.own_accounts({"positive", "negative", "neutral"}))
    assert "neutral" in manifest["combiner"]["inputs"]


@pytest.fixture(scope="module")
def small_data_model(tmp_path_factory):
    """20,000 tweets, 3 epochs, the rest defaults: how `docker run … train` is first tried."""
    tweets = read_path(shared_data("sentiment140/training.110k.processed.noemoticon.csv"))[0]
    tree = OptMl(tmp_path_factory.mktemp("small") / "opt/ml")
    tree.hyperparameters({"epochs": "3"})
    tree.channel("train", [to_blazingtext_line(e) for e in random.Random(0).sample(tweets, 20_000)])
    # On one thread, as `fasttext_tree`: on two, fastText's runs differ (with cleaning v3 this model's
    # "not bad at all" sat at its threshold, below it in 5 of 10 two-thread runs: README).
    result = tree.train({"SM_NUM_CPUS": "1"})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    # Unset, the learning rate was scaled to 18,000 rows (10 % held out), the lexicon's 24,150 and our
    # 1,560 accounts × 3 epochs (0.191).
    rows = 18_000 + 24_150 + len(job.own_accounts({"positive", "negative"}))
    assert predictor.load(tree.model_dir).manifest["hyperparameters"]["learning_rate"] == pytest.approx(
        learning_rate({"learning_rate": None, "epochs": 3}, rows), abs=1e-4)
    return tree.model_dir


def test_a_quick_small_data_model_reads_obvious_checkins_right(small_data_model):
    check_obvious_messages(small_data_model)


@pytest.mark.slow
def test_the_default_job_on_the_shared_data_reads_obvious_checkins_right(default_job):
    shared_data("sentiment140")
    tree, training = default_job
    # Started with the session (conftest.py): ~10 minutes alone on 2 cores, more beside the other tests.
    result = training.wait(timeout=3000)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    check_obvious_messages(tree.model_dir)
