"""The ML side of a training job: train, weigh against the lexicon, evaluate, choose the threshold.

    result = job.run("blazingtext", params, job_params, data, context)
    result.model.save(model_dir); result.metrics; result.threshold

`data` maps channel names to examples: `train` (required), `hand_labelled` (sets a person
labelled, trained on like `train`), `validation`, `test`, `feedback` (the review loop's
human-labelled messages, counted `feedback_weight` times). Reading the channels and writing
the files is the container's part (`container/training.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model import combiner, encoder_member, lexicon, predictor, threshold
from model.artifact import read_manifest
from model.context import TrainingContext, TrainingInterrupted
from model.datasets import Example, read_path, stratified_split
from model.evaluation import evaluate, metric_lines
from model.hyperparameters import Param, Spec

EVALUATED_CHANNELS = ("validation", "test")
# Check-in messages of our own writing: the product's domain, in every lexicon fit (model/combiner.py).
# The data that ships with the code (data/sample/README.md): the sample, and what we wrote ourselves.
BUNDLED = Path(__file__).resolve().parent.parent / "data" / "sample"
REFERENCE_CHECKINS = BUNDLED / "checkins.txt"
# First-person accounts of things that happened, of our own writing, trained on like VADER's words (below):
# each good turn beside its bad twin ("passed my probation period" / "did not pass my probation period") and
# everyday ones with no feeling. Tweets teach little of what happens to a person. The default job as
# bench/compare.py trains it, on 133 other accounts of ours (accounts-test.txt): 83.5-85.7 -> 87.2-88.0 %
# (VADER 74.4 %), unrecognized 11-14 -> 2-5 %; the test sets unchanged within a run's spread; 10 times each
# no better than 3. Customers' accounts of what a company did (customers.txt, paired the same way), for the
# check-ins about a train, a parcel or a plumber: of 106 such check-ins by another writer (services-test.txt),
# 61.3 -> 68.9-69.8 % right (VADER 54.7 %); out-of-sample validation (tweets) 0.8663 -> 0.8624 (docs/model.md).
OWN_ACCOUNTS = (BUNDLED / "accounts.txt", BUNDLED / "customers.txt")
ACCOUNT_REPEATS = 3
# The ensemble's other algorithm, trained with its defaults beside the job's: fastText's bag of words and the
# LSTM's word order err differently (fastText + VADER 0.809 on validation, with the LSTM 0.823; the LSTM job's
# out-of-sample 0.839 -> 0.842 with fastText).
OTHER_ALGORITHM = {"blazingtext": "lstm", "lstm": "blazingtext"}
FASTTEXT_MEMBER_FILE = "fasttext.bin"  # fastText beside an LSTM: not model.bin, which says "a BlazingText model"
HAND_LABELLED = "hand_labelled"
# A fastText model of the hand-labelled messages alone joins the ensemble: its neutral class is not
# drowned out by distant labels (Sentiment140's emoticons call "doing laundry" negative). Out-of-sample
# validation accuracy 0.829 -> 0.838. Below this many messages it would be noise.
HAND_MEMBER_MIN_ROWS = 1_000
HAND_MEMBER_FILE = "hand_labelled.bin"
# Tens of thousands of rows need more passes than the bulk's hundred thousand: chosen on validation
# (out-of-sample 0.838 with BlazingText's 5 epochs at 0.05, 0.839 with 10, 0.842 with 20, 0.842 with 10 at 0.1).
HAND_MEMBER_TRAINING = {"epochs": 10, "learning_rate": 0.1}
HELD_OUT_MAX = 10_000  # validation rows held out of train at most: enough for a handful of weights

# Hyperparameters of the job rather than of an algorithm.
SPEC = Spec(
    *threshold.SPEC.params.values(),
    Param("feedback_weight", int, 3, "feedback: times each human-labelled message counts in training", 1, 100),
    Param("lexicon", bool, True, "ours: combine the model with VADER's lexicon, weighed on validation "
          "(model/combiner.py); for positive/negative labels, also train on VADER's words of feeling and "
          "data/sample/accounts.txt and customers.txt"),
    Param("ensemble", bool, True, "ours: with the lexicon, also train the other algorithm (an LSTM beside "
          "fastText, fastText beside the LSTM) and, given 1,000 hand_labelled and feedback messages, a fastText "
          "model of those alone; the lexicon combination weighs them all (model.bin stays plain fastText)"),
    Param("encoder", bool, True, "ours: with the ensemble and its fastText model of the hand_labelled and "
          "feedback messages, also three small networks (one hidden layer each, averaged) on all-mpnet-base-v2's "
          "sentence vectors of them (model/encoder_member.py): the most accurate model, but ~60 ms a message to "
          "serve on one core, ~37 to train on two; a request longer than it reads in its time is answered "
          "without it"),
    Param("validation_share", float, 0.1, "ours: with no validation channel, share of train held out "
          "for the lexicon weights and the threshold (0: none)", 0, 0.5),
)


@dataclass
class Result:
    """model: what serving loads (the trained model, combined with the lexicon when it was);
    trained: the algorithm's own model; metrics: per evaluated channel; threshold: the chosen
    unrecognized threshold and what it gives on validation (None without validation);
    lexicon_rows, account_rows: how many of VADER's words and of our own accounts the models trained on
    besides the channels."""

    model: predictor.Predictor
    trained: predictor.Predictor
    metrics: dict[str, dict]
    threshold: dict | None
    lexicon_rows: int
    account_rows: int


def run(algorithm_name: str, params: dict, job: dict, data: dict[str, list[Example]],
        context: TrainingContext) -> Result:
    """Train `algorithm_name` on `data` and evaluate it; `data` gains a held-out validation
    channel when it has none and the lexicon needs one."""
    log = context.log
    if "validation" not in data and job["validation_share"] and job["lexicon"]:
        kept, held_out = hold_out(data["train"], job["validation_share"])
        if held_out:
            data["train"], data["validation"] = kept, held_out
            log(f"no validation channel: {len(held_out)} train rows held out as validation")
        else:
            log("no validation channel, and too few train rows to hold any out: no lexicon, no threshold")
    # Human-labelled feedback is scarce and aimed at what the model got wrong: it counts more.
    train_set = data["train"] + data.get(HAND_LABELLED, []) + data.get("feedback", []) * job["feedback_weight"]
    # The models learn VADER's words of feeling and our own accounts too, when the lexicon is on and the
    # labels are its kind.
    labels, words, accounts = {e.label for e in train_set}, [], []
    if job["lexicon"] and labels >= lexicon.TRAINING_LABELS:
        # Neutral accounts too when only validation has that label: the combination learns it there.
        known = labels | {e.label for e in data.get("validation", [])}
        words, accounts = lexicon.training_examples(), own_accounts(known)
        train_set += words + accounts
        log(f"lexicon: {len(words)} examples of VADER's words of feeling and {len(accounts)} of our own accounts "
            f"({', '.join(path.name for path in OWN_ACCOUNTS)}) join the training rows")
    trained = predictor.algorithm(algorithm_name).train(train_set, data.get("validation"), params, context)
    if context.stop_requested():
        raise TrainingInterrupted("stopped after training, before evaluating and saving")
    model = trained
    if job["lexicon"] and "validation" in data:
        members = ensemble_members(algorithm_name, params, train_set, data, accounts, job["encoder"], context) \
            if job["ensemble"] else {}
        model = combiner.fit(trained, data["validation"], read_path(REFERENCE_CHECKINS)[0], log, members)
    elif job["ensemble"]:
        log("ensemble: no members trained: their weights come from the lexicon combination, "
            "which needs lexicon=true and validation rows")
    if job["encoder"] and not job["ensemble"]:
        log("encoder: no sentence encoder's member: it is one of the ensemble's, and ensemble=false")

    results = {channel: evaluate_model(model, data[channel]) for channel in EVALUATED_CHANNELS if channel in data}
    chosen = None
    if "validation" in results:
        chosen = choose_threshold(results["validation"], job)
        log(f"unrecognized threshold={chosen['value']:.4f} (chosen on validation)")
    metrics = {}
    for channel, result in results.items():
        metrics[channel] = result["metrics"]
        if chosen:
            metrics[channel].update(threshold.coverage(*result["confidence_correct"], chosen["value"]))
            if result["neutral_confidences"]:
                metrics[channel]["neutral_unrecognized_share"] = float(np.mean(
                    np.array(result["neutral_confidences"]) < chosen["value"]))
        for line in metric_lines(channel, metrics[channel]):
            log(line)
    return Result(model, trained, metrics, chosen, len(words), len(accounts))


def choose_threshold(validation: dict, job: dict) -> dict:
    """The unrecognized threshold (model/threshold.py) chosen on `evaluate_model`'s result for the
    validation channel, by the rule of the job's hyperparameters; its neutral messages count as wrong."""
    confidences, correct = validation["confidence_correct"]
    neutral = validation["neutral_confidences"]
    return threshold.choose_threshold(confidences + neutral, correct + [False] * len(neutral),
                                      job["threshold_accuracy"], job["max_unrecognized"], len(neutral))


def own_accounts(labels: set[str]) -> list[Example]:
    """The accounts of OWN_ACCOUNTS' files of `labels`, each ACCOUNT_REPEATS times."""
    return [e for e in read_path(*OWN_ACCOUNTS)[0] if e.label in labels] * ACCOUNT_REPEATS


def ensemble_members(algorithm_name: str, params: dict, train_set: list[Example], data: dict[str, list[Example]],
                     accounts: list[Example], with_encoder: bool,
                     context: TrainingContext) -> dict[str, predictor.Predictor]:
    """The models trained beside `algorithm_name`'s, by name: the other algorithm with its defaults
    on the same rows (OTHER_ALGORITHM), and, when there are enough hand-labelled and feedback
    messages, a fastText model of those (and our `accounts`) alone (the job's fastText
    hyperparameters, or fastText's defaults, but HAND_MEMBER_TRAINING's epochs and learning rate)
    and, `with_encoder`, the sentence encoder's head on the same rows (model/encoder_member.py)."""
    log, members = context.log, {}
    other = OTHER_ALGORITHM[algorithm_name]
    log(f"ensemble: training {other} with its defaults beside {algorithm_name}")
    member = predictor.algorithm(other)
    members[other] = member.train(train_set, data["validation"], member.SPEC.defaults(), context)
    if other == "blazingtext":  # the LSTM's own files (lstm.npz, vocab.json) never clash with fastText's
        members[other] = members[other].saved_as(FASTTEXT_MEMBER_FILE)
    hand = data.get(HAND_LABELLED, []) + data.get("feedback", [])
    labels = {e.label for e in hand}
    if len(hand) < HAND_MEMBER_MIN_ROWS or len(labels) < 2:
        log(f"ensemble: no fastText model of the {HAND_LABELLED} and feedback messages alone"
            + (" (nor the sentence encoder's member, which trains on them too)" if with_encoder else "")
            + f": it needs {HAND_MEMBER_MIN_ROWS} of them with two labels or more, there are {len(hand)} "
            f"with {len(labels)}")
    else:
        log(f"ensemble: training fastText on the {len(hand)} {HAND_LABELLED} and feedback messages alone")
        fasttext = predictor.algorithm("blazingtext")
        fasttext_params = {**(params if algorithm_name == "blazingtext" else fasttext.SPEC.defaults()),
                           **HAND_MEMBER_TRAINING}
        members[HAND_LABELLED] = fasttext.train(hand + accounts, data["validation"], fasttext_params, context).saved_as(
            HAND_MEMBER_FILE)
        if with_encoder:
            members[encoder_member.ALGORITHM] = encoder_member.train(hand + accounts, context)
    if context.stop_requested():
        raise TrainingInterrupted("stopped after training the ensemble's members, before evaluating")
    return members


def evaluate_model(model: predictor.Predictor, examples: list[Example]) -> dict:
    """Metrics of `model` on the examples of labels it answers, and (confidences, correct) of
    those for threshold choice; examples labelled neutral, when the model does not answer
    neutral (see model.combiner), are kept apart: they are the ones it should not recognize."""
    answered = [e for e in examples if e.label in model.labels]
    neutral = [e for e in examples if e.label == combiner.NEUTRAL and e.label not in model.labels]
    predictions = model.predict([e.text for e in answered + neutral], k=1)
    predicted = [p.labels[0] for p in predictions[:len(answered)]]
    correct = [p == e.label for p, e in zip(predicted, answered)]
    return {"metrics": evaluate([e.label for e in answered], predicted, model.labels),
            "confidence_correct": ([p.probs[0] for p in predictions[:len(answered)]], correct),
            "neutral_confidences": [p.probs[0] for p in predictions[len(answered):]]}


def hold_out(examples: list[Example], share: float) -> tuple[list[Example], list[Example]]:
    """(kept, held out): a stratified, seeded `share` of `examples`, at most HELD_OUT_MAX rows."""
    share = min(share, HELD_OUT_MAX / len(examples))
    kept, held_out = stratified_split(examples, (1 - share, share), seed=0)
    return kept, held_out


def compare_with_previous(folder: Path, data: dict[str, list[Example]], metrics: dict,
                          log: Callable[[str], None]) -> None:
    """Log the previous model's metrics next to the new one's: measured on the same channels
    when its model files are there, else as its manifest recorded them. FileNotFoundError
    when `folder` holds neither."""
    try:
        previous = predictor.load(folder)
        theirs = {c: evaluate_model(previous, data[c])["metrics"] for c in metrics}
        source = "measured on the same data"
    except (OSError, ValueError) as error:
        manifest = read_manifest(folder)
        if manifest is None:
            raise FileNotFoundError(f"no model or manifest.json in {folder}") from error
        theirs, source = manifest.get("metrics", {}), "as recorded in its manifest, on its own data"
    log(f"previous model ({source}) -> new model:")
    for channel, ours in metrics.items():
        for name in ("accuracy", "macro_f1"):
            before = theirs.get(channel, {}).get(name)
            change = f"{before:.4f} -> {ours[name]:.4f} ({ours[name] - before:+.4f})" if before is not None \
                else f"- -> {ours[name]:.4f}"
            log(f"  {channel}:{name} {change}")
