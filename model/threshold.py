"""When the model cannot decide: the confidence threshold below which a message is unrecognized.

The threshold is chosen at training time on the validation channel and recorded in
the manifest. The rule: the lowest threshold at which the accuracy on the messages
it accepts reaches `threshold_accuracy`, but never one that leaves more than
`max_unrecognized` of the validation messages unrecognized. Validation messages
labelled neutral count as wrong whenever they are accepted (any positive or negative
answer to them is wrong) and are not counted in `max_unrecognized`.
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
                     max_unrecognized: float, neutral: int = 0) -> dict:
    """The threshold by the module's rule, with what it gives on these (validation) predictions.

    `confidences[i]` is the top probability of message i, `correct[i]` whether its top label was
    right. The last `neutral` messages have no clear feeling: any answer to them is wrong, and
    rejecting them does not count against `max_unrecognized`, which caps the others' share.
    """
    if len(confidences) <= neutral:
        raise ValueError("no predictions to choose a threshold from")
    polar = [True] * (len(confidences) - neutral) + [False] * neutral
    ranked = sorted(zip(confidences, correct, polar))
    total, total_polar = len(ranked), len(ranked) - neutral
    correct_above = sum(correct)  # correct among messages at or above the current candidate
    rejected_polar = 0
    chosen = 0.0
    for rejected, (confidence, is_correct, is_polar) in enumerate(ranked):
        # Candidate: this message's confidence, which rejects the `rejected` ones below it.
        # Ties: a threshold equal to a confidence accepts it, so only the first of equals is a candidate.
        if not (rejected and confidence == ranked[rejected - 1][0]):
            if rejected_polar / total_polar > max_unrecognized:
                break
            chosen = confidence if rejected else 0.0
            if correct_above / (total - rejected) >= threshold_accuracy:
                break
        correct_above -= is_correct
        rejected_polar += is_polar
    polar_part = (list(confidences[:total_polar]), list(correct[:total_polar]))
    return {"value": chosen, **coverage(*polar_part, chosen),
            "rule": {"threshold_accuracy": threshold_accuracy, "max_unrecognized": max_unrecognized}}


def coverage(confidences: Sequence[float], correct: Sequence[bool], threshold: float) -> dict:
    """Share of messages left unrecognized at `threshold`, and accuracy on the others."""
    accepted = [c for conf, c in zip(confidences, correct) if conf >= threshold]
    return {"unrecognized_share": 1 - len(accepted) / len(confidences) if confidences else 0.0,
            "accuracy_recognized": sum(accepted) / len(accepted) if accepted else 0.0}
