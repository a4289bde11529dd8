"""When the model cannot decide: the confidence threshold below which a message is unrecognized.

The threshold is chosen at training time on the validation channel and recorded in
the manifest. The rule: the lowest threshold at which the accuracy on the messages
it accepts reaches `threshold_accuracy`, but never one that leaves more than
`max_unrecognized` of the validation messages unrecognized.
"""

from __future__ import annotations

from collections.abc import Sequence

from model.hyperparameters import Param, Spec

UNRECOGNIZED = "unrecognized"

SPEC = Spec(
    Param("threshold_accuracy", float, 0.9, "unrecognized: accuracy wanted on the messages the threshold accepts",
          0, 1),
    Param("max_unrecognized", float, 0.15, "unrecognized: most of the validation messages the threshold may reject",
          0, 1),
)


def parse_threshold(value: str) -> float:
    """A threshold from text: a number from 0 to 1, else ValueError."""
    try:
        threshold = float(value)
    except ValueError:
        threshold = -1.0
    if not 0 <= threshold <= 1:
        raise ValueError(f"must be a number from 0 to 1, got {value!r}")
    return threshold


def sentiment(label: str, confidence: float, threshold: float) -> str:
    """The label when the model is confident enough, else "unrecognized"."""
    return label if confidence >= threshold else UNRECOGNIZED


def choose_threshold(confidences: Sequence[float], correct: Sequence[bool], threshold_accuracy: float,
                     max_unrecognized: float) -> dict:
    """The threshold by the module's rule, with what it gives on these (validation) predictions.

    `confidences[i]` is the top probability of message i, `correct[i]` whether its top label was right.
    """
    if not confidences:
        raise ValueError("no predictions to choose a threshold from")
    ranked = sorted(zip(confidences, correct))
    total = len(ranked)
    correct_above = sum(correct)  # correct among messages at or above the current candidate
    chosen = 0.0
    for rejected, (confidence, is_correct) in enumerate(ranked):
        # Candidate: this message's confidence, which rejects the `rejected` ones below it.
        # Ties: a threshold equal to a confidence accepts it, so only the first of equals is a candidate.
        if rejected and confidence == ranked[rejected - 1][0]:
            correct_above -= is_correct
            continue
        if rejected / total > max_unrecognized:
            break
        chosen = confidence if rejected else 0.0
        if correct_above / (total - rejected) >= threshold_accuracy:
            break
        correct_above -= is_correct
    return {"value": chosen, **coverage(confidences, correct, chosen),
            "rule": {"threshold_accuracy": threshold_accuracy, "max_unrecognized": max_unrecognized}}


def coverage(confidences: Sequence[float], correct: Sequence[bool], threshold: float) -> dict:
    """Share of messages left unrecognized at `threshold`, and accuracy on the others."""
    accepted = [c for conf, c in zip(confidences, correct) if conf >= threshold]
    return {"unrecognized_share": 1 - len(accepted) / len(confidences) if confidences else 0.0,
            "accuracy_recognized": sum(accepted) / len(accepted) if accepted else 0.0}
