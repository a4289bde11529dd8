"""How far the default job's Sentiment140 figures move with the sentence encoder's head alone.

A retrain's figures move by a point or more, and most of that is the encoder member's head: small
networks, each early-stopped on a tenth of the texts, whose seeds and splits are one draw. For a model
`bench/compare.py --keep-model DIR` kept, this retrains that head with each draw given (draw d: the
networks of seeds d x HEADS, d x HEADS + 1, ...), on the same sentence vectors and rows as the job
(model/encoder_member.py's `fit`; the vectors of this code's cleaning and of the default encoder or
`--encoder`'s, so on a model kept before either changed, the draws read the new ones and the kept head its
own: how all-mpnet-base-v2 was weighed against all-MiniLM-L6-v2), keeps every other member,
refits the combination and chooses the threshold on validation as the job does, and prints per head:
bench/validation.py's out-of-sample validation accuracy beside the Sentiment140 test's accuracy, its
neutral and polar tweets unrecognized and the accuracy on the rest, and that accuracy with exactly
15 % of polar tweets unrecognized. The kept model's own head comes first.

It reports a spread, so that "met" means met for most draws; never choose a draw by its test figures.

    python bench/compare.py --keep-model /tmp/default-model
    python bench/head_seeds.py /tmp/default-model 0 1 2 3 4 5 6 7

The sentence vectors of the hand-labelled rows are computed once (~3 minutes on this machine with
all-MiniLM-L6-v2, ~17 with all-mpnet-base-v2).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from common import DATA  # first: OpenBLAS's kernels as `train` has them, so draw 0 is the job's head

# isort: split
import numpy as np
from compare import channels_and_tests
from validation import Answered, out_of_sample

from model import combiner, encoder, encoder_member, job, predictor
from model.datasets import Example, read_path
from model.threshold import coverage


class Embedded:
    """The encoder member's head on sentence vectors computed once for `texts` (looked up as given;
    wrapped in validation.py's Answered, as the other members are)."""

    def __init__(self, member: encoder_member.EncoderMemberPredictor, texts: Sequence[str], vectors: np.ndarray):
        self.labels, self.manifest, self.vocabulary = member.labels, member.manifest, member.vocabulary
        self._member, self._row = member, {text: i for i, text in enumerate(texts)}
        self._vectors = vectors

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        return self._member.vector_probabilities(self._vectors[[self._row[text] for text in texts]])


def test_figures(model: predictor.Predictor, validation: list[Example], sts: list[Example]) -> str:
    """The threshold the job would choose for `model`, and what it and a cut at the job's cap (15 %) give on `sts`."""
    defaults = job.SPEC.defaults()
    budget = defaults["max_unrecognized"]  # the budget of polar tweets, the job's default cap
    chosen = job.choose_threshold(job.evaluate_model(model, validation), defaults)["value"]
    result = job.evaluate_model(model, sts)
    confidences, correct = result["confidence_correct"]
    ours = coverage(confidences, correct, chosen)
    at_budget = coverage(confidences, correct, float(np.quantile(confidences, budget)))
    neutral = float(np.mean(np.array(result["neutral_confidences"]) < chosen))
    return (f"Sentiment140 {np.mean(correct):.1%}, threshold {chosen:.3f}: neutral / polar unrecognized / rest "
            f"{neutral:.1%} / {ours['unrecognized_share']:.1%} / {ours['accuracy_recognized']:.1%}; "
            f"rest at {budget:.0%} {at_budget['accuracy_recognized']:.1%}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir", type=Path, help="a default-job model bench/compare.py --keep-model trained")
    parser.add_argument("draws", type=int, nargs="+", help="draws of the heads to train (0: the job's)")
    parser.add_argument("--encoder", choices=encoder.ENCODERS, default=encoder.DEFAULT,
                        help="the encoder whose vectors the draws' heads read (the kept head reads its own)")
    args = parser.parse_args()
    if not (DATA / "sentiment140").exists():
        sys.exit(f"needs {DATA}: the rows are bench/compare.py's")
    model = predictor.load(args.model_dir)
    members = dict(zip((record["name"] for record in model.combiner.members), model.members)) \
        if isinstance(model, combiner.CombinedPredictor) else {}
    if encoder_member.ALGORITHM not in members:
        sys.exit(f"{args.model_dir} has no sentence encoder's member (not the default job's model?)")
    head = members.pop(encoder_member.ALGORITHM)
    channels, tests, sts_neutral = channels_and_tests()
    validation, references = channels["validation"], read_path(job.REFERENCE_CHECKINS)[0]
    sts = tests["Sentiment140 test"].examples + sts_neutral
    # The head's rows as the job gives them to encoder_member.train: the hand-labelled messages and our accounts.
    print(f"encoding the head's rows with {args.encoder}", flush=True)
    rows = encoder_member.encoded_rows(channels["hand_labelled"]
                                       + job.own_accounts({e.label for c in channels.values() for e in c}),
                                       args.encoder)
    texts = list(dict.fromkeys(e.text for e in validation + references + sts))
    # The texts' vectors per encoder and cleaning: a head kept before either changed reads its own.
    text_vectors: dict[tuple[str, Callable[[str], str]], np.ndarray] = {}
    others = {name: Answered(member, texts) for name, member in members.items()}
    for draw in [None, *args.draws]:
        if draw is not None:
            head, _ = encoder_member.fit(*rows, first_seed=draw * encoder_member.HEADS, encoder_name=args.encoder)
        key = (head.encoder_name, head.preprocess)
        if key not in text_vectors:
            text_vectors[key] = encoder.encoder(head.encoder_name).embed([head.preprocess(text) for text in texts])
        ensemble = {**others, encoder_member.ALGORITHM: Answered(Embedded(head, texts, text_vectors[key]), texts)}
        refitted = combiner.fit(model.base, validation, references, lambda _: None, ensemble)
        print(f"{'kept head' if draw is None else f'draw {draw}'}: out of sample "
              f"{out_of_sample(model.base, ensemble, validation, references):.4f}; "
              + test_figures(refitted, validation, sts), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
