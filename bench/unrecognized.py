"""How well "unrecognized" separates undecidable messages, on the Sentiment140 hand-labelled test set.

Trains through the real `train` on the 110k Sentiment140 part plus SemEval's
positive/negative rows, holding out 10 % of the SemEval rows (hand-labelled,
stratified, seeded) as the validation channel the threshold is chosen on. Then,
on the test set's 498 tweets at the chosen threshold: the share of its 139
neutral tweets marked unrecognized, the share of its 359 positive/negative ones
marked unrecognized, and the accuracy on those recognized; and a
coverage/accuracy plot over all thresholds, written to docs/.

    python bench/unrecognized.py [-p algorithm=lstm ...]
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from common import POLAR, ROOT, hyperparameter_flags, run_train, sts_test, training_data

from model import predictor
from model.datasets import write_blazingtext


def main() -> int:
    hyperparameters = hyperparameter_flags(__doc__)
    algorithm = dict(item.partition("=")[::2] for item in hyperparameters).get("algorithm", "blazingtext")
    with tempfile.TemporaryDirectory(prefix="bench-unrecognized-") as tmp:
        work = Path(tmp)
        train, validation = training_data(validation_share=0.1)
        write_blazingtext(train, work / "train/train.txt")
        write_blazingtext(validation, work / "validation/validation.txt")
        run_train(work, {"train": work / "train", "validation": work / "validation"}, hyperparameters)
        model = predictor.load(work / "model")
        chosen = json.loads((work / "model/manifest.json").read_text())["threshold"]

    test = sts_test()
    predictions = model.predict([e.text for e in test], k=1)
    rows = [(p.probs[0], e.label, p.labels[0]) for p, e in zip(predictions, test)]

    def at(threshold: float) -> tuple[float, float, float]:
        neutral = [c for c, truth, _ in rows if truth == "neutral"]
        polar = [(c, truth == guess) for c, truth, guess in rows if truth in POLAR]
        recognized = [ok for c, ok in polar if c >= threshold]
        return (sum(c < threshold for c in neutral) / len(neutral),
                1 - len(recognized) / len(polar),
                sum(recognized) / len(recognized) if recognized else 0.0)

    neutral, polar, accuracy = at(chosen["value"])
    print(f"algorithm: {algorithm}; threshold {chosen['value']:.4f} chosen on validation "
          f"(unrecognized there {chosen['unrecognized_share']:.1%}, accuracy on the rest "
          f"{chosen['accuracy_recognized']:.1%})")
    print(f"STS neutral tweets marked unrecognized:            {neutral:.1%} (goal >= 50 %)")
    print(f"STS positive/negative tweets marked unrecognized:  {polar:.1%} (goal <= 15 %)")
    print(f"STS accuracy on the recognized positive/negative:  {accuracy:.1%} (goal >= 88 %)")
    print(f"STS accuracy with no threshold:                     {at(0.0)[2]:.1%}")
    plot(at, chosen["value"], ROOT / "docs" / f"unrecognized-{algorithm}.png", algorithm)
    return 0


def plot(at, chosen: float, path: Path, algorithm: str) -> None:
    try:
        import matplotlib
    except ImportError:
        print("matplotlib is not installed: no plot")
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    thresholds = [0.5 + i / 400 for i in range(201)]
    points = [p for p in map(at, thresholds) if p[1] < 1]  # accuracy means nothing with nothing recognized
    figure, axis = plt.subplots(figsize=(7, 4.5), dpi=100)
    axis.plot([1 - p[1] for p in points], [p[2] for p in points], label="accuracy on recognized pos/neg")
    axis.plot([1 - p[1] for p in points], [p[0] for p in points], label="neutral tweets marked unrecognized")
    neutral, polar, accuracy = at(chosen)
    axis.scatter([1 - polar, 1 - polar], [accuracy, neutral], color="black", zorder=3,
                 label=f"chosen threshold {chosen:.3f}")
    axis.set_xlabel("coverage: share of positive/negative tweets recognized")
    axis.set_ylabel("share")
    axis.set_title(f"Sentiment140 hand-labelled test set, {algorithm}")
    axis.grid(alpha=0.3)
    axis.legend(loc="lower left")
    figure.tight_layout()
    figure.savefig(path)
    print(f"plot: {path.relative_to(ROOT)}")


if __name__ == "__main__":
    sys.exit(main())
