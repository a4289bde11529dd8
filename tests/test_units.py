"""Unit tests of the ML side: cleaning, the lexicon and our accounts, top-k, hyperparameters, evaluation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import SAMPLE, bench_module

from model import job, lexicon
from model.datasets import read_path
from model.evaluation import evaluate, metric_lines
from model.hyperparameters import HyperparameterError, Param, Spec, parse_bool, unquote
from model.predictor import Prediction, top_k
from model.preprocessing import (
    clean_text,
    for_encoder,
    preprocessor,
    without_degree_negations,
    without_persistence_negations,
)

# --- cleaning ---------------------------------------------------------------


@pytest.mark.parametrize("raw, cleaned", [
    ("I loooooove it!!!!", "i loove it !!"),
    ("@Kenichan http://t.co/x #SoHappy &amp; more", "<user> <url> sohappy & more"),
    ("www.example.com/a?b=c rocks", "<url> rocks"),
    ("Sad :( but ok :-) ;D <3 xD", "sad :( but ok :-) ;d <3 xd"),
    ("can\u2019t   wait\n\tfor it", "can't neg-wait for it"),  # an idiom is learned as a mark
    ("Not bad at all", "not neg-bad at all"),  # negation: two words marked, within the clause, but not "at"
    ("I don't feel good, but ok", "i don't neg-feel neg-good , but ok"),
    ("never :( great, no but nice", "never :( great , no but nice"),
    ("nothing to do", "nothing to do"),  # function words: neither marked nor counted
    ("doesn't make me happy", "doesn't neg-make me neg-happy"),
    ("not very good", "not very neg-good"),
    ("i dont feel great", "i dont neg-feel neg-great"),  # the apostrophe dropped, as tweets do
    ("Couldn't be better!", "couldn't be better !"),  # a negation of degree: the feeling holds
    ("could not be happier", "could not be happier"),
    ("I've never been more ashamed", "i've never been more ashamed"),
    ("it can't get any worse", "it can't get any worse"),
    ("not feeling better", "not neg-feeling neg-better"),  # a plain negation of a comparative
    ("never been so tired", "never been so tired"),  # never ... so: a degree idiom too
    ("it can't be so bad", "it can't be so neg-bad"),
    ("I can't stop crying", "i can't neg-stop crying"),  # the crying goes on: only the stopping is negated
    ("couldn't help smiling", "couldn't neg-help smiling"),
    ("it didn't help my anxiety", "it didn't neg-help my anxiety"),
    ("email me at a@b.com", "email me at a @ b . com"),  # not a mention
    ("See WWW.Example.com or HTTPS://x.io/a now", "see <url> or <url> now"),  # marks found in any case
    ("ftp://files here #1 ##x @", "ftp :/ / files here 1 ## x @"),
    ("", ""),
])
def test_clean_text(raw, cleaned):
    assert clean_text(raw) == cleaned


@pytest.mark.parametrize("raw, for_vader", [
    ("Couldn't be better!", "be better!"),
    ("I could NOT be happier", "I could be happier"),
    ("never felt better, honestly", "felt better, honestly"),
    ("it can\u2019t get any worse", "it get any worse"),
    ("couldn`t be better", "be better"),  # clean_text's other apostrophes too
    ("I'm not feeling better", "I'm not feeling better"),  # a plain negation stays
    ("can't wait", "can't wait"),
])
def test_vader_is_given_degree_idioms_without_their_negation(raw, for_vader):
    assert without_degree_negations(raw) == for_vader


@pytest.mark.parametrize("raw, for_vader", [
    ("never felt better, honestly", "felt better, "),
    ("To be honest I am exhausted", " I am exhausted"),
    ("meh, not great tbh. To tell you the truth, awful", "meh, not great . , awful"),
    ("an honest man", "an honest man"),  # praise stays
    ("to be honest I can't stop crying", "I crying"),  # and negations of persistence (below)
])
def test_vader_is_given_frankness_idioms_taken_out_too(raw, for_vader):
    assert lexicon.without_idioms(raw) == for_vader


@pytest.mark.parametrize("raw, for_vader", [
    ("I can\u2019t stop crying", "I crying"),
    ("Couldn't help feeling sad :(", "feeling sad :("),
    ("It didn't help.", "It didn't help."),  # nothing goes on after it: a plain negation
    ("the meds did not help at all", "the meds did not help at all"),
    ("can't help myself", "can't help myself"),
    ("I can't stop it.", "I can't stop it."),
])
def test_vader_is_given_negations_of_persistence_taken_out(raw, for_vader):
    assert without_persistence_negations(raw) == for_vader


def test_vaders_words_of_feeling_are_training_examples_negated_the_other_way_round():
    examples = lexicon.training_examples()
    assert len(examples) == 24_150 and len(set(examples)) == len(examples) // lexicon.TRAINING_REPEATS
    labelled = dict(set(examples))
    assert labelled["great"] == labelled["not heartbroken"] == "positive"
    assert labelled["heartbroken"] == labelled["not great"] == "negative"
    assert "okay" not in labelled and ":)" not in labelled  # too faint; emoticons are VADER's to read
    assert "honestly" not in labelled and "not honestly" not in labelled  # frankness, taken out as VADER reads


def test_our_own_accounts_pair_each_good_turn_with_a_bad_one_and_keep_to_the_jobs_labels():
    polar_rows = 0
    for path in job.OWN_ACCOUNTS:
        accounts = read_path(path)[0]
        counts = {label: sum(e.label == label for e in accounts) for label in ("positive", "negative", "neutral")}
        assert counts["positive"] == counts["negative"] > 100 and counts["neutral"] > 0, path.name
        assert sum(counts.values()) == len(accounts) == len({e.text for e in accounts}), path.name
        polar_rows += counts["positive"] + counts["negative"]
    assert len(job.own_accounts({"positive", "negative"})) == polar_rows * job.ACCOUNT_REPEATS
    assert job.own_accounts({"0", "1"}) == []


def test_the_sets_of_our_own_writing_we_measure_on_hold_no_message_a_job_trains_or_fits_on():
    def texts(path: Path) -> set[str]:
        return {" ".join(e.text.lower().split()) for e in read_path(path)[0]}

    trained = set().union(*map(texts, (*job.OWN_ACCOUNTS, job.REFERENCE_CHECKINS)))
    for path in bench_module("compare").OUR_WRITING:
        measured = texts(path)
        assert len(measured) > 100 and not measured & trained, path.name


def test_clean_text_is_idempotent_on_real_text():
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()[::10]
    for line in lines:
        once = clean_text(line)
        assert clean_text(once) == once, line


def test_top_k_orders_each_row_and_keeps_the_labels_order_on_ties():
    probs = np.array([[0.2, 0.7, 0.1], [0.4, 0.4, 0.2], [0.0, 0.0, 0.0]])
    assert top_k(probs, ["a", "b", "c"], 2) == [Prediction(["b", "a"], [0.7, 0.2]),
                                                 Prediction(["a", "b"], [0.4, 0.4]),
                                                 Prediction(["a", "b"], [0.0, 0.0])]
    assert top_k(probs, ["a", "b", "c"], 99)[0].labels == ["b", "a", "c"]
    assert top_k(probs, ["a", "b", "c"], 0)[0].labels == ["b"]


@pytest.mark.parametrize("raw, for_the_encoder", [
    ("@SushiGo ordered 24 pieces, got 16 https://t.co/x &amp; no refund :(",
     "@user ordered 24 pieces, got 16 http & no refund :("),
    ("@user @user thanks!!!  See WWW.Example.com", "@user @user thanks!!! See http"),  # TweetEval's, as they are
    ("I can't stop crying 😢", "I can't stop crying 😢"),  # case, negations, emoji as written
    ("email me at a@b.com", "email me at a@b.com"),  # not a mention
])
def test_the_sentence_encoder_reads_links_and_handles_as_tokens_and_the_rest_as_written(raw, for_the_encoder):
    assert for_encoder(raw) == for_the_encoder


def test_preprocessor_lookup_serves_each_version_and_refuses_unknown_ones():
    assert preprocessor({"name": "tweet", "version": 5}) is clean_text
    assert preprocessor({"name": "tweet", "version": 4})("can't stop crying") == "can't neg-stop neg-crying"
    assert preprocessor({"name": "tweet", "version": 3})("Not bad at all") == "not neg-bad neg-at all"
    assert preprocessor({"name": "tweet", "version": 2})("never felt better") == "never neg-felt neg-better"
    assert preprocessor({"name": "tweet", "version": 1})("Not bad at all") == "not bad at all"  # before marking
    with pytest.raises(ValueError, match=r"tweet v99.*train it again"):
        preprocessor({"name": "tweet", "version": 99})


# --- hyperparameters ----------------------------------------------------------

SPEC = Spec(Param("epochs", int, 5, "", 1, 100), Param("early_stopping", bool, False, ""),
            Param("lr", float, 0.05, "", 0, 1), Param("mode", str, "supervised", "", choices=("supervised",)))


@pytest.mark.parametrize("raw, expected", [
    ({"epochs": "7"}, {"epochs": 7}),
    ({"epochs": '"7"'}, {"epochs": 7}),
    ({"epochs": 7.0}, {"epochs": 7}),
    ({"early_stopping": "False"}, {"early_stopping": False}),
    ({"early_stopping": '"false"'}, {"early_stopping": False}),
    ({"early_stopping": "TRUE"}, {"early_stopping": True}),
    ({"lr": "0.5"}, {"lr": 0.5}),
    ({"mode": '"supervised"'}, {"mode": "supervised"}),
    ({"sagemaker_program": "x", "_tuning_objective_metric": "y"}, {}),
])
def test_hyperparameter_parsing(raw, expected):
    assert SPEC.parse(raw) == {**SPEC.defaults(), **expected}


def test_all_hyperparameter_problems_are_reported_together():
    with pytest.raises(HyperparameterError) as error:
        SPEC.parse({"epochs": "0", "early_stopping": "yes please", "colour": "red"})
    message = str(error.value)
    assert "epochs='0' is out of range; allowed: int in [1, 100]" in message
    assert "early_stopping='yes please' is not a valid bool; allowed: true, false" in message
    assert "unknown hyperparameter 'colour'" in message


@pytest.mark.parametrize("given, rows, epochs, expected", [
    (None, 147_000, 5, 0.05),       # the default job on all the shared data: BlazingText's rate
    (None, 18_000, 3, 0.05 * 500_000 / 54_000),  # the quick small-data job: raised in proportion
    (None, 1_000, 1, 0.5),          # capped
    (0.01, 1_000, 1, 0.01),         # a rate given is a rate kept
])
def test_fasttexts_learning_rate_scales_to_the_data_unless_given(given, rows, epochs, expected):
    from model.fasttext_model import learning_rate

    assert learning_rate({"learning_rate": given, "epochs": epochs}, rows) == pytest.approx(expected)


def test_unquote_and_parse_bool():
    assert unquote('"5"') == "5" and unquote('"5') == '"5' and unquote(5) == 5
    assert parse_bool("0") is False and parse_bool("yes") is True
    with pytest.raises(ValueError):
        parse_bool("nope")


# --- evaluation -------------------------------------------------------------


def test_evaluate_and_metric_lines():
    metrics = evaluate(["p", "p", "n", "n"], ["p", "n", "n", "n"], ["n", "p"])
    assert metrics["accuracy"] == 0.75
    assert metrics["confusion"]["p"] == {"n": 1, "p": 1}
    assert metrics["per_label"]["n"]["precision"] == pytest.approx(2 / 3)
    assert metrics["per_label"]["p"]["recall"] == 0.5
    assert metric_lines("validation", metrics)[0] == "validation:accuracy=0.7500"
