"""Unit tests: cleaning, readers, split, hyperparameters, content types, environment."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import SAMPLE, bench_module, shared_data
from werkzeug.datastructures import MIMEAccept
from werkzeug.http import parse_accept_header

from container import content_types
from container.environment import ConfigurationError, ServingSettings, TrainingEnvironment
from container.formats import parse_custom_attributes
from container.training import local_environment
from model import job, lexicon
from model.datasets import DataError, Example, read_path, stratified_split
from model.evaluation import evaluate, metric_lines
from model.hyperparameters import HyperparameterError, Param, Spec, parse_bool, unquote
from model.predictor import Prediction, top_k
from model.preprocessing import clean_text, preprocessor, without_degree_negations, without_persistence_negations

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


def test_preprocessor_lookup_serves_each_version_and_refuses_unknown_ones():
    assert preprocessor({"name": "tweet", "version": 5}) is clean_text
    assert preprocessor({"name": "tweet", "version": 4})("can't stop crying") == "can't neg-stop neg-crying"
    assert preprocessor({"name": "tweet", "version": 3})("Not bad at all") == "not neg-bad neg-at all"
    assert preprocessor({"name": "tweet", "version": 2})("never felt better") == "never neg-felt neg-better"
    assert preprocessor({"name": "tweet", "version": 1})("Not bad at all") == "not bad at all"  # before marking
    with pytest.raises(ValueError, match=r"tweet v99.*train it again"):
        preprocessor({"name": "tweet", "version": 99})


# --- readers ----------------------------------------------------------------


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def test_blazingtext_lines(tmp_path):
    examples, report = read_path(write(tmp_path, "a.txt", "__label__positive good stuff\n\n__label__negative bad\n"))
    assert examples == [Example("good stuff", "positive"), Example("bad", "negative")]
    assert report.rows == 2


def test_augmented_manifest_lines(tmp_path):
    content = '{"source": "good", "label": 1}\n{"source": "bad", "label": 0}\n{"source": "x"}\n'
    examples, report = read_path(write(tmp_path, "a.jsonl", content))
    assert examples == [Example("good", "1"), Example("bad", "0")]
    assert report.skipped == {"missing or unknown label": 1}


def test_sentiment140_latin1_and_zipped(tmp_path):
    rows = ('"0","1","Mon","NO_QUERY","u","caf\xe9 was bad"\n"4","2","Mon","NO_QUERY","u","great"\n'
            '"2","3","Mon","NO_QUERY","u","meh"\n')
    plain = write(tmp_path, "s140.csv", rows.encode("latin-1"))
    examples, _ = read_path(plain)
    assert examples == [Example("café was bad", "negative"), Example("great", "positive"), Example("meh", "neutral")]
    with zipfile.ZipFile(tmp_path / "s140.zip", "w") as archive:
        archive.write(plain, "training.csv")
    assert read_path(tmp_path / "s140.zip")[0] == examples


def test_one_latin1_line_in_a_utf8_file_spoils_only_that_line(tmp_path):
    content = "__label__positive caf\u00e9 cr\u00e8me \U0001F600\n".encode() + b"__label__negative na\xefve\n"
    examples, report = read_path(write(tmp_path, "a.txt", content))
    assert examples == [Example("café crème 😀", "positive"), Example("naïve", "negative")]
    assert report.cp1252_lines == 1


def test_semeval_tsv_with_escapes(tmp_path):
    content = "1\tpositive\tI\\u2019m happy\\u002c really\n2\tnegative\tsad\nbroken line\n"
    examples, report = read_path(write(tmp_path, "a.txt", content))
    assert examples == [Example("I’m happy, really", "positive"), Example("sad", "negative")]
    assert report.skipped == {"not 3 tab-separated columns": 1}


def test_label_text_csv_with_header_and_unquoted_commas(tmp_path):
    examples, _ = read_path(write(tmp_path, "a.csv", "label,text\npositive,good, really good\nnegative,\"bad\"\n"))
    assert examples == [Example("good, really good", "positive"), Example("bad", "negative")]


def test_folder_of_mixed_formats_skips_hidden_files(tmp_path):
    write(tmp_path, "a.txt", "__label__positive good\n")
    write(tmp_path, "b.csv", "negative,bad\n")
    write(tmp_path, ".hidden", "garbage\x00")
    examples, report = read_path(tmp_path)
    assert sorted(examples) == [Example("bad", "negative"), Example("good", "positive")]
    assert len(report.files) == 2


def test_mostly_malformed_file_is_rejected_naming_it(tmp_path):
    path = write(tmp_path, "bad.txt", "__label__positive ok\n" + "__label__a __label__b x\n" * 3)
    with pytest.raises(DataError, match=r"bad\.txt: 3 of 4 rows are unusable"):
        read_path(path)


def test_real_shared_data_reads():
    _, report = read_path(shared_data("sentiment140/training.110k.processed.noemoticon.csv"))
    assert report.rows == 110_119 and not report.skipped
    assert report.labels == {"negative": 54_835, "positive": 55_284}
    _, test_report = read_path(shared_data("sentiment140/testdata.manual.2009.06.14.csv"))
    assert test_report.labels == {"negative": 177, "neutral": 139, "positive": 182}


# --- split ------------------------------------------------------------------


def test_stratified_split_keeps_proportions_and_is_seeded():
    examples = [Example(f"p{i}", "positive") for i in range(700)] + [Example(f"n{i}", "negative") for i in range(300)]
    train, validation, test = stratified_split(examples, (0.7, 0.15, 0.15), seed=3)
    assert (len(train), len(validation), len(test)) == (700, 150, 150)
    assert sum(e.label == "positive" for e in validation) == 105
    assert {e.text for e in train + validation + test} == {e.text for e in examples}
    assert stratified_split(examples, (0.7, 0.15, 0.15), seed=3)[1] == validation
    assert stratified_split(examples, (0.7, 0.15, 0.15), seed=4)[1] != validation


def test_prepare_command_writes_blazingtext_channels(tmp_path):
    from model.prepare import prepare

    written = prepare([SAMPLE], tmp_path, train_fraction=0.8, seed=1, log=lambda _: None)
    assert written["train"] == pytest.approx(0.8 * sum(written.values()), abs=2)
    first = (tmp_path / "train/train.txt").read_text().splitlines()[0]
    assert first.startswith("__label__") and first == first.lower()


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
