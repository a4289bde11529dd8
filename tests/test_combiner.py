"""The trained model weighed against VADER's lexicon (model/combiner.py), and the threshold rule
with neutral validation messages (model/threshold.py), on a real model trained by `train`."""

from __future__ import annotations

import json
import shutil

import fasttext
import numpy as np
import pytest
from conftest import SAMPLE
from support import AppClient

from model import combiner, fasttext_model, job, lexicon, predictor
from model.artifact import model_files, read_manifest
from model.combiner import CombinedPredictor
from model.context import TrainingContext
from model.datasets import read_path
from model.logistic import softmax
from model.threshold import choose_threshold

CHECKINS = read_path(job.REFERENCE_CHECKINS)[0]


def test_a_trained_model_is_served_through_its_recorded_combination(fasttext_tree):
    manifest = json.loads((fasttext_tree.model_dir / "manifest.json").read_text())
    assert manifest["combiner"]["inputs"] == manifest["labels"] == ["negative", "positive"]
    model = predictor.load(fasttext_tree.model_dir)
    assert isinstance(model, CombinedPredictor) and model.labels == ["negative", "positive"]
    for answer in model.predict(["a wonderful , moving film", "dull and lifeless", "not bad at all"], k=2):
        assert sorted(answer.labels) == ["negative", "positive"] and sum(answer.probs) <= 1 + 1e-9
    assert [a.probs for a in model.predict(["", "qwxz zzkj"], k=2)] == [[0.0, 0.0], [0.0, 0.0]]


@pytest.mark.parametrize("tree", ["fasttext_tree", "ensemble_tree"])
def test_the_folded_weights_give_the_fitted_formula(tree, request):
    """Serving folds the standardisation into the weights and cleans each text once for all the
    ensemble's models; the fit's formula, spelt out with each model cleaning for itself, must agree."""
    model = predictor.load(request.getfixturevalue(tree).model_dir)
    texts = [e.text for e in CHECKINS]
    c = model.combiner
    assert len(model.members) == len(c.members) == (3 if tree == "ensemble_tree" else 0)
    assert (model.fallback is not None) == (tree == "ensemble_tree")  # only an ensemble with the encoder has one
    inputs = combiner._inputs([m.probabilities(texts) for m in (model.base, *model.members)],
                              lexicon.features(texts))
    weights = np.asarray(c.weights)
    scores = ((inputs - np.asarray(c.mean)) / np.asarray(c.scale)) @ weights[:-1] + weights[-1]
    expected = softmax(scores)[:, [c.classes.index(label) for label in model.labels]]
    served = model.probabilities(texts)
    known = served.sum(axis=1) > 0  # texts with nothing to go on are set to 0 after the formula
    assert known.sum() > 0.9 * len(texts)
    np.testing.assert_allclose(served[known], expected[known], rtol=1e-9, atol=1e-12)


def test_idioms_are_read_by_the_lexicon_and_older_combinations_are_served_as_fitted(fasttext_tree, tmp_path):
    """VADER reads "couldn't be better" as a negation, "to be honest" as praise and "can't stop crying"
    as the crying negated; the lexicon a combination is fitted with now is given the text without them.
    One fitted with plain VADER, or with fewer idioms taken out (before), is still served so."""
    idioms = ["Couldn't be better!", "never felt better", "it couldn't be worse", "to be honest I am exhausted",
              "I can't stop crying"]
    plain, degree, frank, now = (lexicon.features(idioms, name)
                                 for name in (lexicon.PLAIN, lexicon.DEGREE, lexicon.IDIOMS, lexicon.NAME))
    assert list(np.sign(plain[:, 0])) == [-1, -1, 1, 1, 1] and list(np.sign(degree[:, 0])) == [1, 1, -1, 1, 1]
    assert list(np.sign(frank[:, 0])) == [1, 1, -1, -1, 1] and list(np.sign(now[:, 0])) == [1, 1, -1, -1, -1]
    assert read_manifest(fasttext_tree.model_dir)["combiner"]["lexicon"] == lexicon.NAME
    older = tmp_path / "model"
    shutil.copytree(fasttext_tree.model_dir, older)
    manifest = read_manifest(older)
    for name, read in ((lexicon.PLAIN, plain), (lexicon.DEGREE, degree), (lexicon.IDIOMS, frank)):
        manifest["combiner"]["lexicon"] = name
        (older / "manifest.json").write_text(json.dumps(manifest))
        model = predictor.load(older)
        c = model.combiner
        inputs = combiner._inputs([model.base.probabilities(idioms)], read)
        weights = np.asarray(c.weights)
        expected = softmax(((inputs - np.asarray(c.mean)) / np.asarray(c.scale)) @ weights[:-1]
                                     + weights[-1])
        np.testing.assert_allclose(model.probabilities(idioms),
                                   expected[:, [c.classes.index(x) for x in model.labels]], rtol=1e-9)
    manifest["combiner"]["lexicon"] = "vader-9"
    (older / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match=r"combined with lexicon 'vader-9'.*image that trained it"):
        predictor.load(older)


def test_an_ensemble_records_its_members_and_serves_them_beside_a_plain_fasttext_model(ensemble_tree, tmp_path):
    manifest = read_manifest(ensemble_tree.model_dir)
    members = manifest["combiner"]["members"]
    assert [(m["name"], m["algorithm"], m["labels"]) for m in members] == [
        ("lstm", "lstm", ["negative", "positive"]), ("hand_labelled", "blazingtext", ["negative", "positive"]),
        ("encoder", "encoder", ["negative", "positive"])]
    # All five files are in model_version.
    assert model_files(manifest) == ["encoder-head.npz", "hand_labelled.bin", "lstm.npz", "model.bin", "vocab.json"]
    # model.bin is still the plain fastText model that BlazingText and the CLI load, of every train row.
    plain = fasttext.load_model(str(ensemble_tree.model_dir / "model.bin"))
    hand = fasttext.load_model(str(ensemble_tree.model_dir / "hand_labelled.bin"))
    assert sorted(plain.get_labels()) == sorted(hand.get_labels()) == ["__label__negative", "__label__positive"]
    assert len(hand.get_words()) < len(plain.get_words())  # 1,706 rows against 8,529
    model = predictor.load(ensemble_tree.model_dir)
    assert [m.labels for m in (model.base, *model.members)] == [["negative", "positive"]] * 4
    reply = AppClient(ensemble_tree.model_dir).post(json.dumps(["I feel great today", "slept badly, dreading work"]))
    assert reply.status_code == 200
    assert [r["sentiment"] for r in reply.json()] == ["positive", "negative"], reply.json()

    damaged = tmp_path / "model"
    shutil.copytree(ensemble_tree.model_dir, damaged)
    (damaged / "lstm.npz").write_bytes((damaged / "lstm.npz").read_bytes()[:-100])
    with pytest.raises(ValueError, match="do not match the manifest"):
        predictor.load(damaged)


def test_the_lstm_job_has_fasttext_beside_it_under_its_own_name_and_the_encoders_member(lstm_ensemble_tree):
    model_dir = lstm_ensemble_tree.model_dir
    manifest = read_manifest(model_dir)
    assert manifest["algorithm"] == "lstm"
    assert [(m["name"], m["algorithm"], m["labels"]) for m in manifest["combiner"]["members"]] == [
        ("blazingtext", "blazingtext", ["negative", "positive"]),
        ("hand_labelled", "blazingtext", ["negative", "positive"]), ("encoder", "encoder", ["negative", "positive"])]
    # No model.bin: a BlazingText user must not take an LSTM job's artifact for a fastText one.
    assert model_files(manifest) == ["encoder-head.npz", "fasttext.bin", "hand_labelled.bin", "lstm.npz", "vocab.json"]
    assert not (model_dir / "model.bin").exists()
    beside = fasttext.load_model(str(model_dir / "fasttext.bin"))
    assert sorted(beside.get_labels()) == ["__label__negative", "__label__positive"]
    model = predictor.load(model_dir)
    assert [type(m).__name__ for m in (model.base, *model.members)] == [
        "LSTMPredictor", "FastTextPredictor", "FastTextPredictor", "EncoderMemberPredictor"]
    reply = AppClient(model_dir).post(json.dumps(["I feel great today", "slept badly, dreading work"]))
    assert reply.status_code == 200
    assert [r["sentiment"] for r in reply.json()] == ["positive", "negative"], reply.json()


def test_a_request_too_long_for_the_encoder_in_its_time_is_answered_without_it(lstm_ensemble_tree, start_server):
    model_dir = lstm_ensemble_tree.model_dir
    fallback = read_manifest(model_dir)["combiner"]["fallback"]
    assert [m["name"] for m in fallback["members"]] == ["blazingtext", "hand_labelled"]  # all but the encoder's
    model = predictor.load(model_dir)
    # 3 s of SageMaker's timeout, 4 request threads a worker: the encoder may take 0.5 s, ~1,250 tokens.
    server = start_server(model_dir, {"SAGEMAKER_MODEL_SERVER_TIMEOUT": "3"})
    short = [e.text for e in CHECKINS[:3]]
    long = [e.text for e in read_path(SAMPLE)[0][:300]]  # ~8,000 tokens
    for texts, expected in ((short, model), (long, model.fallback)):
        assert combiner.for_request(model, texts, 0.5) is expected
        reply = server.post(json.dumps({"instances": texts, "configuration": {"k": 2}}))
        assert reply.status_code == 200, reply.text
        served = np.array([r["prob"] for r in reply.json()])
        np.testing.assert_allclose(served, [a.probs for a in expected.predict(texts, k=2)], atol=1e-5)
    differs = np.abs(served - [a.probs for a in model.predict(long, k=2)]).max()
    assert differs > 0.01, differs  # the fallback is another combination, not the encoder's
    assert "300 messages, more than the sentence encoder reads in 0.5 s: answered without it" in server.log()


def test_neutral_validation_messages_teach_it_what_no_clear_feeling_is(fasttext_tree):
    base = fasttext_model.load(fasttext_tree.model_dir, read_manifest(fasttext_tree.model_dir))
    assert "neutral" not in base.labels
    combined = combiner.fit(base, CHECKINS, log=lambda line: None)
    assert combined.combiner.classes == ["negative", "positive", "neutral"]
    assert combined.labels == ["negative", "positive"]  # fitted, never answered
    confidence = {label: [a.probs[0] for a, e in zip(combined.predict([e.text for e in CHECKINS]), CHECKINS)
                          if e.label == label] for label in ("positive", "negative", "neutral")}
    mean = {label: sum(values) / len(values) for label, values in confidence.items()}
    assert mean["neutral"] < min(mean["positive"], mean["negative"]) - 0.2, mean


def test_our_check_ins_count_a_third_even_when_the_validation_channel_holds_them(fasttext_tree):
    base = fasttext_model.load(fasttext_tree.model_dir, read_manifest(fasttext_tree.model_dir))
    snippets = read_path(SAMPLE)[0][::20]
    apart = combiner.fit(base, snippets, CHECKINS, log=lambda line: None).combiner
    within = combiner.fit(base, snippets + CHECKINS, CHECKINS, log=lambda line: None).combiner
    assert within.weights == apart.weights


def test_our_check_ins_are_left_out_for_a_model_of_other_labels(tmp_path):
    """A model labelled "0"/"1" (as augmented manifests often are) must not learn neutral from
    our check-ins alone, nor drop their positive and negative rows."""
    relabelled = [e._replace(label={"positive": "1", "negative": "0"}[e.label])
                  for e in read_path(SAMPLE)[0]]
    validation = relabelled[::10]
    model = fasttext_model.train([e for i, e in enumerate(relabelled) if i % 10], validation,
                                 {**fasttext_model.SPEC.defaults(), "buckets": 100_000, "quantize": False},
                                 TrainingContext(work_dir=tmp_path, threads=2))
    combined = combiner.fit(model, validation, CHECKINS, log=lambda line: None)
    assert combined.combiner.classes == ["0", "1"] and combined.labels == ["0", "1"]


def test_a_combination_for_other_labels_is_refused(fasttext_tree):
    manifest = read_manifest(fasttext_tree.model_dir)
    base = fasttext_model.load(fasttext_tree.model_dir, manifest)
    wrong = {**manifest["combiner"], "inputs": ["negative", "neutral", "positive"]}
    with pytest.raises(ValueError, match="fitted for labels"):
        combiner.from_manifest(base, {**manifest, "combiner": wrong}, fasttext_tree.model_dir)


def test_the_threshold_counts_accepted_neutral_messages_as_wrong_but_caps_only_the_polar():
    # Four polar messages, all right; two neutral ones at 0.6 and 0.7 confidence.
    confidences, correct = [0.9, 0.8, 0.75, 0.65, 0.6, 0.7], [True] * 4 + [False] * 2
    without = choose_threshold(confidences[:4], correct[:4], 0.9, 0.5)
    assert without["value"] == 0.0  # every polar message right: nothing to reject
    chosen = choose_threshold(confidences, correct, 0.9, 0.5, neutral=2)
    assert chosen["value"] == 0.75  # rejects both neutral ones (0.6, 0.7) and one polar (0.65) of four
    assert chosen["unrecognized_share"] == 0.25
    capped = choose_threshold(confidences, correct, 0.9, 0.2, neutral=2)
    assert capped["value"] == 0.65  # may reject no polar message: stops below the first
