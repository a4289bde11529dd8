"""Out-of-sample accuracy on validation: how a change to the ensemble is chosen without a test set.

The combination of a model trained by `bench/compare.py --keep-model DIR` (on its channels) is
refitted five times (model/combiner.py's `fit`), each on four fifths of the validation rows and
the check-ins among them, and scored on the other fifth's positive/negative rows; then the same
with each member of its ensemble left out. A member earns its place when leaving it out costs
accuracy. The sentence encoder's member chose itself so: 0.8436 -> 0.8585 (docs/model.md, "The ensemble").

    python bench/compare.py --keep-model /tmp/default-model
    python bench/validation.py /tmp/default-model

Each member's answers on the validation rows are computed once (the encoder's take a minute).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from common import DATA, POLAR  # first: OpenBLAS's kernels before NumPy loads

# isort: split
import numpy as np
from compare import channels_and_tests

from model import combiner, job, predictor
from model.datasets import Example, read_path
from model.predictor import TrainedPredictor

FOLDS = 5


class Answered:
    """A member with its probabilities of `texts` computed once: every fold's fit asks for them again."""

    def __init__(self, member: TrainedPredictor, texts: Sequence[str]):
        self.labels, self.manifest, self.vocabulary = member.labels, member.manifest, member.vocabulary
        self._rows = dict(zip(texts, member.probabilities(texts)))

    @staticmethod
    def preprocess(text: str) -> str:
        return text  # looked up as given

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        return np.array([self._rows[text] for text in texts])

    cleaned_probabilities = probabilities


def out_of_sample(base: TrainedPredictor, members: dict[str, Answered], validation: list[Example],
                  references: list[Example]) -> float:
    """Accuracy on the positive/negative validation rows of combinations fitted without them (FOLDS folds)."""
    order = np.random.RandomState(0).permutation(len(validation))
    correct: list[bool] = []
    for fold in range(FOLDS):
        held = [validation[i] for rank, i in enumerate(order) if rank % FOLDS == fold]
        kept = [validation[i] for rank, i in enumerate(order) if rank % FOLDS != fold]
        held_set = set(held)
        fitted = combiner.fit(base, kept, [e for e in references if e not in held_set], lambda _: None, members)
        polar = [e for e in held if e.label in POLAR]
        correct += [p.labels[0] == e.label for p, e in zip(fitted.predict([e.text for e in polar]), polar)]
    return float(np.mean(correct))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir", type=Path, help="a model bench/compare.py --keep-model trained")
    args = parser.parse_args()
    if not (DATA / "sentiment140").exists():
        sys.exit(f"needs {DATA}: the validation rows are bench/compare.py's")
    try:
        model = predictor.load(args.model_dir)
    except (FileNotFoundError, ValueError) as error:  # no model there, or one this code cannot serve
        sys.exit(f"validation.py: {error}")
    if not isinstance(model, combiner.CombinedPredictor):
        sys.exit(f"{args.model_dir} holds no combination (trained with lexicon=false?): nothing to refit")
    validation = channels_and_tests()[0]["validation"]
    references = read_path(job.REFERENCE_CHECKINS)[0]
    texts = list(dict.fromkeys(e.text for e in validation + references))
    members = {record["name"]: Answered(member, texts) for record, member in zip(model.combiner.members, model.members)}
    print(f"{model.manifest['algorithm']} with {', '.join(members) or 'no members'}; {len(validation)} validation "
          f"rows, {FOLDS} folds", flush=True)
    print(f"all: out-of-sample accuracy {out_of_sample(model.base, members, validation, references):.4f}", flush=True)
    for name in members:
        others = {other: member for other, member in members.items() if other != name}
        print(f"without {name}: {out_of_sample(model.base, others, validation, references):.4f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
