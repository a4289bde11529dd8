"""How accuracy grows with more tweets: is the model held back by its data or by itself?

Shuffles Sentiment140's 110k tweets (seeded), holds out 10,000 to measure and 2,000 for
validation (the LSTM's early stopping), and trains each algorithm alone (no lexicon, no
ensemble; its defaults, or `-p` given to every algorithm) on the first n of the other 98,000,
n doubling up to all of them. Prints accuracy on the 10,000 and on the test's 359 polar
tweets. A curve still rising at 98,000 says more labelled text would still pay. Asserts nothing.

    python bench/learning_curve.py [--algorithms blazingtext,lstm] [--sizes 12250,24500,...] [-p epochs=10]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

from common import DATA, POLAR, flags, sts_test

from model import predictor
from model.context import TrainingContext
from model.datasets import Example, filter_labels, read_path

MEASURED, VALIDATION = 10_000, 2_000


def accuracy(model: predictor.Predictor, examples: list[Example]) -> float:
    answers = model.predict([e.text for e in examples])
    return sum(a.labels[0] == e.label for a, e in zip(answers, examples)) / len(examples)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--algorithms", default="blazingtext,lstm")
    parser.add_argument("--sizes", default="12250,24500,49000,98000")
    args = flags(__doc__, parser)
    # every flag checked before the first minute of training
    if not all(size.isdigit() for size in args.sizes.split(",")):
        sys.exit(f"--sizes takes numbers of tweets separated by commas, not {args.sizes!r}")
    if bad := [item for item in args.hyperparameter if "=" not in item]:
        sys.exit(f"-p takes NAME=VALUE, not {bad[0]!r}")
    given = dict(item.split("=", 1) for item in args.hyperparameter)
    try:
        runs = [(predictor.algorithm(name), name) for name in args.algorithms.split(",")]
        settings = {name: algorithm.SPEC.parse(given) for algorithm, name in runs}
    except ValueError as error:  # an unknown algorithm, or a HyperparameterError
        sys.exit(str(error))
    sizes = [int(size) for size in args.sizes.split(",")]
    tweets, _ = read_path(DATA / "sentiment140/training.110k.processed.noemoticon.csv")
    random.Random(5).shuffle(tweets)  # the file is all negatives, then all positives
    held_out, validation = tweets[:MEASURED], tweets[MEASURED:MEASURED + VALIDATION]
    train = tweets[MEASURED + VALIDATION:]
    test, _ = filter_labels(sts_test(), POLAR)
    print(f"held out: {len(held_out)} Sentiment140 tweets; test: {len(test)} polar tweets")
    for algorithm, name in runs:
        for size in sizes:
            with tempfile.TemporaryDirectory(prefix="bench-curve-") as work:
                started = time.monotonic()
                model = algorithm.train(train[:size], validation, settings[name],
                                        TrainingContext(Path(work), threads=2, log=lambda line: None))
                seconds = time.monotonic() - started
                print(f"{name:12s} {size:>7,} tweets: held-out {accuracy(model, held_out):.4f}, "
                      f"test {accuracy(model, test):.4f} ({seconds:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
