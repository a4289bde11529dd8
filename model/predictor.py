"""The one interface serving and evaluation use, whatever the algorithm.

    predictor = load("/opt/ml/model")
    predictor.predict(["what a lovely day"], k=2)
    # [Prediction(labels=["positive", "negative"], probs=[0.97, 0.03])]

A model whose manifest records a `combiner` is answered through it (`model.combiner`:
the trained model and VADER's lexicon, weighed on validation data).

Labels are bare ("positive"); the `__label__` prefix of BlazingText's answers
is added by the response format, not here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from model.artifact import read_manifest, verify

# Algorithm name -> module; each module has SPEC, train(), load(). Imported
# lazily so a fastText server never pays for importing Chainer.
ALGORITHMS = {"blazingtext": "model.fasttext_model", "lstm": "model.lstm"}
# Models that are only ever an ensemble's members (model/job.py), never a job's algorithm ("minilm": the
# sentence encoder's member as earlier images named it).
MEMBER_ALGORITHMS = {"encoder": "model.encoder_member", "minilm": "model.encoder_member"}
DEFAULT_ALGORITHM = "blazingtext"
BLAZINGTEXT_MODEL_FILE = "model.bin"


@dataclass(frozen=True)
class Prediction:
    """The k most probable labels of one text, most probable first."""

    labels: list[str]
    probs: list[float]


def top_k(probs: np.ndarray, labels: Sequence[str], k: int) -> list[Prediction]:
    """Each row of a (texts, labels) probability matrix as a Prediction of its `k` most probable
    labels; ties keep the labels' order. Sorted in Python: for a handful of labels that is several
    times quicker than NumPy's argsort, whose fixed cost dominated a one-text request."""
    k = max(1, min(k, len(labels)))
    predictions = []
    for row in probs.tolist():
        order = sorted(range(len(row)), key=row.__getitem__, reverse=True)[:k]  # stable, also reversed
        predictions.append(Prediction([labels[i] for i in order], [row[i] for i in order]))
    return predictions


class Predictor(Protocol):
    """manifest: what the model's manifest.json records; labels: what predict() answers;
    vocabulary: the words the model knows; preprocess: the cleaning its training text had."""

    manifest: dict
    labels: list[str]
    vocabulary: Sequence[str]
    preprocess: Callable[[str], str]

    def predict(self, texts: Sequence[str], k: int = 1) -> list[Prediction]:
        """Predictions for `texts`, in order; `k` labels each (all labels when k >= their number)."""
        ...

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), labels) probabilities, columns in `labels` order."""
        ...

    def save(self, model_dir: Path) -> dict:
        """Write the model's files into `model_dir`; return the manifest fields they need."""
        ...


class TrainedPredictor(Predictor, Protocol):
    """An algorithm's own model (not a combination of several): it also takes text already
    cleaned, so an ensemble of models with the same cleaning cleans each text once."""

    def cleaned_probabilities(self, cleaned: Sequence[str]) -> np.ndarray:
        """probabilities() of texts already cleaned by `preprocess`."""
        ...


def algorithm(name: str):
    """The module implementing algorithm `name`."""
    if name not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {name!r}; allowed: {', '.join(ALGORITHMS)}")
    return importlib.import_module(ALGORITHMS[name])


def member_algorithm(name: str):
    """The module of an ensemble member's algorithm `name` (a job's algorithms, or MEMBER_ALGORITHMS)."""
    if name in MEMBER_ALGORITHMS:
        return importlib.import_module(MEMBER_ALGORITHMS[name])
    return algorithm(name)


def load(model_dir: Path | str) -> Predictor:
    """Load the model in `model_dir`: by its manifest, or a bare BlazingText/fastText `model.bin`."""
    model_dir = Path(model_dir)
    manifest = read_manifest(model_dir)
    if manifest is not None:
        verify(model_dir, manifest)
        from model import combiner  # it builds on this module's Prediction

        return combiner.from_manifest(algorithm(manifest["algorithm"]).load(model_dir, manifest), manifest,
                                      model_dir)
    if (model_dir / BLAZINGTEXT_MODEL_FILE).exists():
        return algorithm(DEFAULT_ALGORITHM).load(model_dir, None)
    found = sorted(p.name for p in model_dir.iterdir()) if model_dir.is_dir() else []
    raise FileNotFoundError(f"no model in {model_dir}: expected manifest.json or a BlazingText "
                            f"{BLAZINGTEXT_MODEL_FILE}; found {found or 'nothing'}")
