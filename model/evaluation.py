"""Classification metrics, and their log lines in the form SageMaker's metric regexes read."""

from __future__ import annotations

from collections.abc import Sequence


def evaluate(truth: Sequence[str], predicted: Sequence[str], labels: Sequence[str]) -> dict:
    """Accuracy, per-label precision/recall/F1 and the confusion matrix.

    `confusion[t][p]` counts examples of true label t predicted as p. Labels seen
    in `truth` but unknown to the model are counted as errors.
    """
    if len(truth) != len(predicted):
        raise ValueError("truth and predicted differ in length")
    names = list(labels) + sorted(set(truth) - set(labels))
    confusion = {t: {p: 0 for p in names} for t in names}
    for t, p in zip(truth, predicted):
        confusion[t][p] += 1
    total = len(truth)
    correct = sum(confusion[n][n] for n in names)
    per_label = {}
    for name in names:
        true_positive = confusion[name][name]
        predicted_as = sum(confusion[t][name] for t in names)
        actual = sum(confusion[name].values())
        precision = true_positive / predicted_as if predicted_as else 0.0
        recall = true_positive / actual if actual else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_label[name] = {"precision": precision, "recall": recall, "f1": f1, "support": actual}
    present = [n for n in names if per_label[n]["support"]]
    return {
        "examples": total,
        "accuracy": correct / total if total else 0.0,
        "macro_f1": sum(per_label[n]["f1"] for n in present) / len(present) if present else 0.0,
        "per_label": per_label,
        "confusion": confusion,
    }


def metric_lines(channel: str, metrics: dict) -> list[str]:
    """`validation:accuracy=0.8123`-style lines, one metric each, stable names and order."""
    lines = [f"{channel}:accuracy={metrics['accuracy']:.4f}", f"{channel}:macro_f1={metrics['macro_f1']:.4f}"]
    for label, scores in metrics["per_label"].items():
        for name in ("precision", "recall", "f1"):
            lines.append(f"{channel}:{name}_{label}={scores[name]:.4f}")
    for name in ("unrecognized_share", "accuracy_recognized", "neutral_unrecognized_share"):
        if name in metrics:
            lines.append(f"{channel}:{name}={metrics[name]:.4f}")
    return lines
