"""A (bi)LSTM sentence classifier, trained in Chainer and served in NumPy, like the fastText one.

    ids (B, T) -> word vectors -> (Bi)LSTM encoder -> max over time -> (B, D*H)
               -> dropout -> linear -> logits (B, labels)

Speed (2 CPU cores, no GPU) comes from doing the little work an LSTM needs with
few Python-level steps: the input projections of all time steps (and both
directions) are one matmul; the recurrence of both directions is one Chainer
function looping over time in NumPy; minibatches are length-bucketed and long
texts truncated to `max_len`. Serving skips Chainer altogether (see
docs/lstm-serving.md).

Modules: `spec` (hyperparameters, file names), `vocabulary` (words to ids),
`activations` and `kernels` (the recurrence and lookup as Chainer functions),
`network` (the Chainer links), `inference` (the same forward pass in NumPy),
`coalescing` (concurrent requests in one pass), `predictor` (the served model,
its files), `checkpoints` and `training` (the loop).
"""

from __future__ import annotations

from model.context import TrainingContext
from model.datasets import Example
from model.lstm.predictor import LSTMPredictor, load
from model.lstm.spec import CHECKPOINT_FILE, SPEC, VOCAB_FILE, WEIGHTS_FILE

__all__ = ["CHECKPOINT_FILE", "SPEC", "VOCAB_FILE", "WEIGHTS_FILE", "LSTMPredictor", "load", "train"]


def train(train_set: list[Example], validation: list[Example] | None, params: dict,
          context: TrainingContext) -> LSTMPredictor:
    """Train on `train_set`; with early_stopping and `validation`, keep the best epoch's model.
    (Imports Chainer, which a server never needs.)"""
    from model.lstm import training

    return training.train(train_set, validation, params, context)
