"""Multinomial logistic regression by full-batch Adam, in NumPy: the lexicon combination's fit
(model/combiner.py); its softmax and standardisation serve the sentence encoder's member too
(model/encoder_member.py)."""

from __future__ import annotations

import numpy as np


def softmax(scores: np.ndarray) -> np.ndarray:
    """Each row of scores as probabilities."""
    scores = scores - scores.max(axis=1, keepdims=True)
    exp = np.exp(scores)
    return exp / exp.sum(axis=1, keepdims=True)


def standardisation(inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each feature's (mean, scale) over the rows of `inputs`: fitted on (inputs - mean) / scale."""
    return inputs.mean(axis=0), inputs.std(axis=0) + 1e-6


def fold_standardisation(weights: np.ndarray, bias: np.ndarray, mean: np.ndarray,
                         scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(W', b') with x @ W' + b' == ((x - mean) / scale) @ weights + bias: folded once when a model loads,
    so a request pays for one product, not a subtraction and a division besides."""
    return weights / scale[:, None], bias - (mean / scale) @ weights


def logistic_regression(inputs: np.ndarray, targets: np.ndarray, row_weights: np.ndarray, n_classes: int, l2: float,
                         steps: int = 2000, learning_rate: float = 0.05) -> np.ndarray:
    """(features + 1, classes) weights minimising the row-weighted mean cross-entropy + l2/2·|W|², by full-batch Adam
    (the lexicon fit's few thousand rows of a handful of features: a second or two)."""
    design = np.hstack([inputs, np.ones((len(inputs), 1))])
    onehot = np.eye(n_classes)[targets]
    weights = np.zeros((design.shape[1], n_classes))
    first, second = np.zeros_like(weights), np.zeros_like(weights)
    penalty = np.ones_like(weights)
    penalty[-1] = 0.0  # the bias is not shrunk
    for step in range(1, steps + 1):
        residual = (softmax(design @ weights) - onehot) * row_weights[:, None]
        gradient = design.T @ residual / len(design) + l2 * penalty * weights
        first = 0.9 * first + 0.1 * gradient
        second = 0.999 * second + 0.001 * gradient**2
        weights -= learning_rate * (first / (1 - 0.9**step)) / (np.sqrt(second / (1 - 0.999**step)) + 1e-8)
    return weights
