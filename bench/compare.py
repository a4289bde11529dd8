"""Ours against VADER on every held-out set of ../shared/data, through the real `train`.

Trains the default job (`{}` hyperparameters; `-p` to change them, e.g. `-p algorithm=lstm`)
on all of ../shared/data except the sets measured. Channels: `train`, Sentiment140's 110k
part (its labels come from emoticons); `hand_labelled`, 90 % of each set a person labelled:
SemEval 2013-2016 but its 2016 test file (positive, negative and neutral), TweetEval
emotion's train and validation (joy+optimism positive, anger+sadness negative), and 80 % of
the sentence-polarity set; `validation`, the other 10 % of each plus the bundled check-in
messages. Then prints, beside VADER:

| set | measure |
|---|---|
| Sentiment140 test, 359 positive/negative tweets | accuracy |
| SemEval-2016 test, positive/negative rows | accuracy |
| TweetEval emotion test, joy+optimism vs anger+sadness | balanced accuracy |
| sentence polarity, the held-out 20 % | accuracy |
| first-person accounts of our own writing (data/sample/accounts-test.txt) | accuracy |
| accounts of felt emotions of our own writing, ISEAR's seven (data/sample/emotions-test.txt) | balanced accuracy |
| customers' tweets to companies of our own writing (data/sample/customers-test.txt) | balanced accuracy |
| check-ins about what a company or service did, of our own writing (data/sample/services-test.txt) | accuracy |
| Sentiment140 test neutral / polar tweets | share unrecognized; accuracy on the recognized |

with per-class F1 and confusion matrices, and draws docs/unrecognized-<algorithm>.png
(coverage and accuracy over every threshold; other -p settings add themselves to the name,
e.g. unrecognized-blazingtext-ensemble-false.png). Asserts nothing.

`--unseen tweeteval` (or `polarity`) leaves that set out of training and validation altogether:
its test then measures a kind of text the job never saw, as the held-out evaluation's
first-person accounts of feelings are (TweetEval's emotions are the nearest we have to them).
Such a run draws no plot.

`--keep-model DIR` keeps the trained model, whose validation bench/validation.py measures.

    python bench/compare.py [-p algorithm=lstm] [-p epochs=3 ...] [--unseen tweeteval] [--keep-model DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from common import DATA, POLAR, ROOT, flags, run_train  # first: OpenBLAS's kernels before NumPy loads

# isort: split
import numpy as np

from model import combiner, job, lexicon, predictor
from model.artifact import model_files
from model.datasets import Example, filter_labels, read_path, stratified_split, write_blazingtext
from model.evaluation import evaluate

EMOTIONS = {"0": "negative", "1": "positive", "2": "positive", "3": "negative"}  # anger joy optimism sadness
ACCOUNTS = job.BUNDLED / "accounts-test.txt"  # never trained on, unlike job.OWN_ACCOUNTS
EMOTION_ACCOUNTS = job.BUNDLED / "emotions-test.txt"  # nor these: joy against six negative emotions
CUSTOMERS = job.BUNDLED / "customers-test.txt"  # nor these: customers' tweets to companies
SERVICES = job.BUNDLED / "services-test.txt"  # nor these: check-ins about a service
OUR_WRITING = (ACCOUNTS, EMOTION_ACCOUNTS, CUSTOMERS, SERVICES)  # the sets of our own writing measured here
UNSEEN = {"tweeteval": "TweetEval emotion test", "polarity": "sentence polarity (20 %)"}  # --unseen: its test


@dataclass
class TestSet:
    """A held-out set and its measure: accuracy, or with `balanced` the mean of the two recalls (for
    sets whose classes are far from even: TweetEval's emotions, the felt emotions' 25 joyful of 199,
    the customer tweets' 78 positive of 198)."""

    examples: list[Example]
    balanced: bool = False


def tweeteval(split: str) -> list[Example]:
    folder = DATA / "tweeteval_emotion"
    texts = (folder / f"{split}_text.txt").read_text(encoding="utf-8").splitlines()
    labels = (folder / f"{split}_labels.txt").read_text(encoding="utf-8").split()
    return [Example(" ".join(text.split()), EMOTIONS[label]) for text, label in zip(texts, labels)]


def sentence_polarity() -> list[Example]:
    return [Example(" ".join(line.split()), label)
            for name, label in (("pos", "positive"), ("neg", "negative"))
            for line in (DATA / f"sentence_polarity/rt-polarity.{name}").read_text(
                encoding="utf-8", errors="replace").splitlines() if line.strip()]


def channels_and_tests(unseen: str | None = None) -> tuple[dict[str, list[Example]], dict[str, TestSet],
                                                          list[Example]]:
    """({channel: examples}, {test set: TestSet}, the Sentiment140 test's neutral tweets) as the module
    says; the `unseen` set (a key of UNSEEN) in no channel."""
    semeval = [p for p in sorted((DATA / "semeval2013-2016").iterdir()) if "2016test" not in p.name]
    polarity_train, polarity_test = stratified_split(sentence_polarity(), (0.8, 0.2), seed=1)
    # Sentiment140's labels were read off emoticons, never checked by a person: all of it trains,
    # none of it validates (the lexicon weights and the threshold need labels that are right).
    channels = {"train": read_path(DATA / "sentiment140/training.110k.processed.noemoticon.csv")[0],
                "hand_labelled": [], "validation": read_path(job.REFERENCE_CHECKINS)[0]}
    hand_labelled = {"semeval": filter_labels(read_path(*semeval)[0], POLAR | {"neutral"})[0],
                     "tweeteval": tweeteval("train") + tweeteval("val"), "polarity": polarity_train}
    for name, examples in hand_labelled.items():
        if name == unseen:
            continue
        kept, held_out = stratified_split(examples, (0.9, 0.1), seed=2)
        channels["hand_labelled"] += kept
        channels["validation"] += held_out
    sts = read_path(DATA / "sentiment140/testdata.manual.2009.06.14.csv")[0]
    tests = {
        "Sentiment140 test": TestSet([e for e in sts if e.label in POLAR]),
        "SemEval-2016 test": TestSet(filter_labels(read_path(DATA / "semeval2013-2016/twitter-2016test-A.txt")[0],
                                                   POLAR)[0]),
        "TweetEval emotion test": TestSet(tweeteval("test"), balanced=True),
        "sentence polarity (20 %)": TestSet(polarity_test),
        "first-person accounts, ours": TestSet(read_path(ACCOUNTS)[0]),
        "felt emotions, ours": TestSet(read_path(EMOTION_ACCOUNTS)[0], balanced=True),
        "customer tweets, ours": TestSet(read_path(CUSTOMERS)[0], balanced=True),
        "check-ins about services, ours": TestSet(read_path(SERVICES)[0]),
    }
    if unseen:
        tests[f"{UNSEEN[unseen]} (unseen)"] = tests.pop(UNSEEN[unseen])
    return channels, tests, [e for e in sts if e.label == "neutral"]


def vader_labels(texts: list[str]) -> tuple[list[str], np.ndarray]:
    """VADER's verdicts (compound >= 0 read as positive, as the data README measures it)."""
    compound = lexicon.features(texts, lexicon.PLAIN)[:, 0]
    return ["positive" if c >= 0 else "negative" for c in compound], compound


def score(test: TestSet, predicted: list[str]) -> tuple[float, dict]:
    """(the test's measure, all metrics) of `predicted` labels against the test's."""
    metrics = evaluate([e.label for e in test.examples], predicted, ["negative", "positive"])
    if test.balanced:
        return float(np.mean([metrics["per_label"][label]["recall"] for label in ("negative", "positive")])), metrics
    return metrics["accuracy"], metrics


def describe(metrics: dict) -> str:
    f1 = " ".join(f"F1 {label} {scores['f1']:.3f}" for label, scores in metrics["per_label"].items())
    confusion = metrics["confusion"]
    return (f"{f1}; confusion (rows truth, cols predicted neg/pos): neg {confusion['negative']['negative']}/"
            f"{confusion['negative']['positive']}, pos {confusion['positive']['negative']}/"
            f"{confusion['positive']['positive']}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--unseen", choices=sorted(UNSEEN), help="leave this set out of every channel")
    parser.add_argument("--keep-model", type=Path, help="copy the trained model there (for bench/validation.py)")
    args = flags(__doc__, parser)
    if args.keep_model and args.keep_model.exists():
        parser.error(f"--keep-model {args.keep_model} exists: name a folder that does not, or remove it")
    hyperparameters = args.hyperparameter
    channels, tests, neutral_tweets = channels_and_tests(args.unseen)
    with tempfile.TemporaryDirectory(prefix="bench-compare-") as tmp:
        work = Path(tmp)
        for name, examples in channels.items():
            write_blazingtext(examples, work / name / f"{name}.txt")
        print(", ".join(f"{name} {len(examples)} rows" for name, examples in channels.items())
              + f"; hyperparameters: {' '.join(hyperparameters) or 'defaults'}", flush=True)
        started = time.monotonic()
        run_train(work, {name: work / name for name in channels}, hyperparameters)
        seconds = time.monotonic() - started
        manifest = json.loads((work / "model/manifest.json").read_text())
        size = sum((work / "model" / name).stat().st_size for name in model_files(manifest))
        model = predictor.load(work / "model")
        if args.keep_model:
            shutil.copytree(work / "model", args.keep_model)
        threshold = manifest["threshold"]["value"]
        print(f"{manifest['algorithm']}: trained in {seconds:.0f} s, artifact {size / 1e6:.1f} MB, "
              f"threshold {threshold:.3f}\n")
        # A model with the sentence encoder answers requests too long for it without it: that one measured too.
        fallback = model.fallback if isinstance(model, combiner.CombinedPredictor) else None
        models = [model, fallback] if fallback else [model]
        print(f"| set | VADER | ours ({manifest['algorithm']}) |" + (" ours, long requests (without the encoder) |"
                                                                      if fallback else "")
              + "\n|---|---|" + "---|" * len(models))
        details = []
        answers = [{name: m.predict([e.text for e in test.examples], k=1) for name, test in tests.items()}
                   for m in models]
        neutral_answers = [m.predict([e.text for e in neutral_tweets], k=1) for m in models]
        for name, test in tests.items():
            theirs, their_metrics = score(test, vader_labels([e.text for e in test.examples])[0])
            ours = [score(test, [a.labels[0] for a in each[name]]) for each in answers]
            print(f"| {name} ({len(test.examples)}) | {theirs:.1%} | "
                  + " | ".join(f"{accuracy:.1%}" for accuracy, _ in ours) + " |")
            details.append(f"{name}\n  VADER: {describe(their_metrics)}\n  ours:  {describe(ours[0][1])}")

        def at(cut: float, which: int = 0) -> tuple[float, float, float]:
            """STS (neutral unrecognized, polar unrecognized, accuracy on the recognized) at threshold `cut`,
            of models[which]."""
            polar = [(a.probs[0], a.labels[0] == e.label) for a, e in zip(answers[which]["Sentiment140 test"],
                                                                          tests["Sentiment140 test"].examples)]
            recognized = [ok for confidence, ok in polar if confidence >= cut]
            return (float(np.mean([a.probs[0] < cut for a in neutral_answers[which]])),
                    1 - len(recognized) / len(polar), float(np.mean(recognized)) if recognized else 0.0)

        print("| Sentiment140 test: neutral unrecognized / polar unrecognized / accuracy on the rest | — | "
              + " | ".join("{:.1%} / {:.1%} / {:.1%}".format(*at(threshold, which)) for which in range(len(models)))
              + " |")
        print("\n" + "\n".join(details))
        # Other settings than the algorithm get a plot of their own: docs/ keeps the defaults'.
        settings = "".join(f"-{item.replace('=', '-')}" for item in hyperparameters
                           if not item.startswith("algorithm="))
        if not args.unseen:  # its Sentiment140 plot would say nothing the full run's does not
            plot(at, threshold, ROOT / "docs" / f"unrecognized-{manifest['algorithm']}{settings}.png",
                 manifest["algorithm"])
    return 0


def plot(at, chosen: float, path: Path, algorithm: str) -> None:
    """Coverage against accuracy and neutral rejection over every threshold, the chosen one marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = [p for p in map(at, np.linspace(0, 1, 201)) if p[1] < 1]  # nothing recognized: no accuracy
    figure, axis = plt.subplots(figsize=(7, 4.5), dpi=100)
    axis.plot([1 - p[1] for p in points], [p[2] for p in points], label="accuracy on recognized pos/neg")
    axis.plot([1 - p[1] for p in points], [p[0] for p in points], label="neutral tweets marked unrecognized")
    neutral, polar, accuracy = at(chosen)
    axis.scatter([1 - polar, 1 - polar], [accuracy, neutral], color="black", zorder=3,
                 label=f"threshold {chosen:.3f}, chosen on validation")
    axis.set_xlabel("coverage: share of positive/negative tweets recognized")
    axis.set_ylabel("share")
    axis.set_title(f"Sentiment140 hand-labelled test set, {algorithm} + lexicon")
    axis.grid(alpha=0.3)
    axis.legend(loc="lower left")
    figure.tight_layout()
    figure.savefig(path)
    print(f"plot: {path.relative_to(ROOT)}")


if __name__ == "__main__":
    sys.exit(main())
