"""The served model: cleaning, vocabulary and the NumPy forward pass behind the `Predictor` interface."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from model.lstm.coalescing import Coalescer
from model.lstm.inference import InferenceNetwork
from model.lstm.spec import VOCAB_FILE, WEIGHTS_FILE
from model.lstm.vocabulary import encode, pad
from model.predictor import Prediction, top_k
from model.preprocessing import preprocessor

COALESCE_MAX_TEXTS = 256  # a pass of waiting calls' texts stops growing here (a call is never split)
PREDICT_BATCH = 64  # texts per forward pass: length-sorted, so little padding (64 beat 128 and 512, measured)


class LSTMPredictor:
    """A trained classifier, its vocabulary and labels, and the cleaning of its training text.

    Args: weights (`lstm.npz`'s arrays by name, see `InferenceNetwork`), vocabulary (words by id),
    labels (by output index), dims (the manifest's network dims), max_len (tokens kept per text),
    manifest (at least its `preprocessing`).
    """

    def __init__(self, weights: dict[str, np.ndarray], vocabulary: list[str], labels: list[str], dims: dict,
                 max_len: int, manifest: dict):
        self.weights = weights
        self.network = InferenceNetwork(weights, dims)
        self.vocabulary = vocabulary
        self.index = {word: i for i, word in enumerate(vocabulary)}
        self.labels = labels
        self.dims = dims
        self.max_len = max_len
        self.manifest = manifest
        self.preprocess = preprocessor(manifest["preprocessing"])
        self._forward = Coalescer(self._forward_all, max_items=COALESCE_MAX_TEXTS)

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), labels) softmax probabilities, in input order; the texts of calls made at
        the same moment by other threads go through the network together."""
        return self.cleaned_probabilities([self.preprocess(text) for text in texts])

    def cleaned_probabilities(self, cleaned: Sequence[str]) -> np.ndarray:
        return self._forward([encode(text, self.index, self.max_len) for text in cleaned])

    def _forward_all(self, sequences: list[list[int]]) -> np.ndarray:
        """(len(sequences), labels) probabilities of encoded texts, in length-sorted chunks."""
        if len(sequences) == 1:  # the common single-text request: no sorting, no scatter
            return self.network.probabilities(*pad(sequences))
        order = np.argsort([len(s) for s in sequences], kind="stable")
        probs = np.empty((len(sequences), len(self.labels)), np.float32)
        for start in range(0, len(order), PREDICT_BATCH):
            chunk = order[start:start + PREDICT_BATCH]
            probs[chunk] = self.network.probabilities(*pad([sequences[i] for i in chunk]))
        return probs

    def predict(self, texts: Sequence[str], k: int = 1) -> list[Prediction]:
        if not len(texts):
            return []
        return top_k(self.probabilities(texts), self.labels, k)

    def save(self, model_dir: Path) -> dict:
        np.savez_compressed(model_dir / WEIGHTS_FILE, **self.weights)  # the layout Chainer's save_npz writes
        (model_dir / VOCAB_FILE).write_text(json.dumps(self.vocabulary, ensure_ascii=False) + "\n", encoding="utf-8")
        return {"weights_file": WEIGHTS_FILE, "vocab_file": VOCAB_FILE, "network": self.dims,
                "max_len": self.max_len}


def load(model_dir: Path, manifest: dict) -> LSTMPredictor:
    """The model `save` wrote into `model_dir`, with the manifest the job wrote next to it."""
    vocabulary = json.loads((model_dir / manifest.get("vocab_file", VOCAB_FILE)).read_text(encoding="utf-8"))
    dims = manifest["network"]
    if dims["n_vocab"] != len(vocabulary) or dims["n_labels"] != len(manifest["labels"]):
        raise ValueError(f"{model_dir}: the vocabulary or labels do not match the manifest's network dims")
    with np.load(model_dir / manifest.get("weights_file", WEIGHTS_FILE), allow_pickle=False) as data:
        weights = {name: data[name] for name in data.files}
    expected = _shapes(dims)
    shapes = {name: array.shape for name, array in weights.items()}
    if shapes != expected:
        raise ValueError(f"{model_dir}: the weights' shapes {shapes} do not match the manifest's network "
                         f"dims, which need {expected}")
    return LSTMPredictor(weights, vocabulary, list(manifest["labels"]), dims, manifest["max_len"], manifest)


def _shapes(dims: dict) -> dict[str, tuple[int, ...]]:
    """Every weight's shape for network `dims` (Chainer's load_npz checked the same)."""
    directions, h_dim, embed_dim = 2 if dims["bidirectional"] else 1, dims["hidden_dim"], dims["embed_dim"]
    shapes = {"encoder/embed/W": (dims["n_vocab"], embed_dim), "output/W": (dims["n_labels"], directions * h_dim),
              "output/b": (dims["n_labels"],)}
    for layer in range(dims["layers"]):
        in_dim = embed_dim if layer == 0 else directions * h_dim
        shapes |= {f"encoder/w_in{layer}": (directions * 4 * h_dim, in_dim),
                   f"encoder/w_rec{layer}": (directions, h_dim, 4 * h_dim),
                   f"encoder/bias{layer}": (directions * 4 * h_dim,)}
    return shapes
