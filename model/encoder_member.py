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
from model.artifact import SERVE_OR_RETRAIN
from model.context import TrainingContext
from model.datasets import Example
from model.logistic import logistic_regression, softmax
from model.predictor import Prediction, top_k
from model.preprocessing import preprocessor

ALGORITHM = "minilm"
HEAD_FILE = "minilm-head.npz"
PREPROCESSING = {"name": "none", "version": 1}  # whitespace folded only: the encoder's tokenizer reads the rest
# Tokens the encoder runs through a second on one core, a little below what bench/encoder_speed.py
# measures on this machine's (2,450-2,820, tweets and long texts alike): a serving worker's math runs
# on one thread (container/environment.py), and the ensemble's other models take their share too.
TOKENS_PER_SECOND = 2_500


class EncoderMemberPredictor:
    """labels: the classes; mean, scale: (384,) standardisation of the sentence vectors;
    weights: (385, classes) the regression's, the last row the bias."""

    def __init__(self, labels: Sequence[str], mean: np.ndarray, scale: np.ndarray, weights: np.ndarray):
        self.labels = list(labels)
        self.mean, self.scale, self.weights = mean, scale, weights
        # The standardisation folded into the weights once, not applied to every request's vectors.
        self._weights = weights[:-1] / scale[:, None]
        self._bias = weights[-1] - (mean / scale) @ weights[:-1]
        self.manifest = {"algorithm": ALGORITHM, "preprocessing": PREPROCESSING, "encoder": encoder.NAME}
        self.preprocess = preprocessor(PREPROCESSING)
        self.vocabulary: Sequence[str] = ()  # no words of its own: the base model's decide "nothing to go on"

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        return self.cleaned_probabilities([self.preprocess(text) for text in texts])

    def cleaned_probabilities(self, cleaned: Sequence[str]) -> np.ndarray:
        if not cleaned:
            return np.zeros((0, len(self.labels)))
        return softmax(encoder.encoder().embed(cleaned) @ self._weights + self._bias)

    def predict(self, texts: Sequence[str], k: int = 1) -> list[Prediction]:
        return top_k(self.probabilities(texts), self.labels, k)

    def affordable(self, texts: Sequence[str], seconds: float) -> bool:
        """Whether the encoder would take `texts` in `seconds` or less (TOKENS_PER_SECOND); only a request
        long enough to need it is tokenized to count (30,000 tweets: 1 s)."""
        budget = seconds * TOKENS_PER_SECOND
        if len(texts) * encoder.MAX_TOKENS <= budget:
            return True
        return encoder.encoder().count_tokens([self.preprocess(text) for text in texts]) <= budget

    def save(self, model_dir: Path) -> dict:
        with open(model_dir / HEAD_FILE, "wb") as file:
            np.savez(file, labels=np.array(self.labels), mean=self.mean, scale=self.scale, weights=self.weights)
        return {"head_file": HEAD_FILE, "encoder": encoder.NAME}


def train(examples: list[Example], context: TrainingContext) -> EncoderMemberPredictor:
    """Fit the regression on the sentence vectors of `examples` (L2 penalty 1/rows, scikit-learn's C=1)."""
    labels = sorted({e.label for e in examples})
    context.log(f"ensemble: {encoder.NAME} sentence vectors of {len(examples)} messages")
    clean = preprocessor(PREPROCESSING)
    texts = [clean(e.text) for e in examples]
    unique = list(dict.fromkeys(texts))  # each text encoded once (our accounts are trained on 3 times)
    row = {text: i for i, text in enumerate(unique)}
    vectors = encoder.encoder().embed(unique)[[row[text] for text in texts]]
    mean, scale = vectors.mean(axis=0), vectors.std(axis=0) + 1e-6
    targets = np.array([labels.index(e.label) for e in examples])
    weights = logistic_regression((vectors - mean) / scale, targets, np.ones(len(examples)), len(labels),
                                  l2=1 / len(examples))
    return EncoderMemberPredictor(labels, mean, scale, weights)


def load(model_dir: Path, record: dict) -> EncoderMemberPredictor:
    """The member of `record`, with the encoder loaded now: a server without its weights refuses the model
    at start (FileNotFoundError, saying what to install), not at the first request."""
    if record.get("encoder") != encoder.NAME:
        raise ValueError(f"the model's ensemble has a regression on {record.get('encoder')!r} sentence vectors; "
                         f"this server has {encoder.NAME} and no other: {SERVE_OR_RETRAIN} (or retrain with "
                         "-p encoder=false)")
    encoder.encoder()
    with np.load(model_dir / record["head_file"], allow_pickle=False) as head:
        return EncoderMemberPredictor([str(label) for label in head["labels"]], head["mean"], head["scale"],
                                      head["weights"])
