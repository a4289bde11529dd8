"""The network as Chainer links, for training: word vectors, a (bi)LSTM encoder, max over time, a linear layer.

    ids (B, T) -> EmbedID -> (Bi)LSTM encoder -> max over time -> (B, D*H)
               -> dropout -> Linear -> logits (B, labels)

Padding goes after the tokens, and the backward direction reads each text
reversed (its own tokens only), so padding never reaches a real position's
state; padded positions are masked out of the max-pooling. `inference.py`
computes the same forward pass in NumPy alone, from the saved weights.
"""

from __future__ import annotations

import math

import chainer
import chainer.functions as F
import chainer.links as L
import numpy as np

from model.lstm.inference import reversed_positions
from model.lstm.kernels import Lookup, Recurrence


class Encoder(chainer.Chain):
    """Word ids -> a fixed-size sentence vector: embeddings, a (bi)LSTM, max over time.

    Args: n_vocab (ids 0..n_vocab-1, 0 is padding), embed_dim E, hidden_dim H,
    layers, bidirectional (D = 2 directions, else 1), dropout (on the word vectors).
    Call with `ids` (B, T) int32, texts left-aligned and padded with 0, and
    `lengths` (B,) ints >= 1; returns a (B, D*H) sentence vector.
    """

    def __init__(self, n_vocab: int, embed_dim: int, hidden_dim: int, layers: int = 1,
                 bidirectional: bool = True, dropout: float = 0.0):
        super().__init__()
        self.directions = 2 if bidirectional else 1
        self.hidden_dim, self.layers, self.dropout = hidden_dim, layers, dropout
        forget_bias = np.zeros((self.directions, 4 * hidden_dim), np.float32)
        forget_bias[:, hidden_dim:2 * hidden_dim] = 1.0
        with self.init_scope():
            self.embed = L.EmbedID(n_vocab, embed_dim, initialW=chainer.initializers.Uniform(0.1))
            for layer in range(layers):
                in_dim = embed_dim if layer == 0 else self.directions * hidden_dim
                scale = 1 / math.sqrt(hidden_dim)
                setattr(self, f"w_in{layer}", chainer.Parameter(  # (D*4H, in), as F.linear takes it
                    chainer.initializers.Uniform(scale), (self.directions * 4 * hidden_dim, in_dim)))
                setattr(self, f"w_rec{layer}", chainer.Parameter(  # filled below
                    chainer.initializers.Zero(), (self.directions, hidden_dim, 4 * hidden_dim)))
                setattr(self, f"bias{layer}", chainer.Parameter(forget_bias.ravel().copy()))
        # Recurrent weights: orthogonal per direction and gate.
        for layer in range(layers):
            w = getattr(self, f"w_rec{layer}").array
            for d in range(self.directions):
                for k in range(4):
                    q, _ = np.linalg.qr(np.random.standard_normal((hidden_dim, hidden_dim)))
                    w[d, :, k * hidden_dim:(k + 1) * hidden_dim] = q

    def forward(self, ids: np.ndarray, lengths: np.ndarray) -> chainer.Variable:
        batch, steps = ids.shape
        directions, h_dim = self.directions, self.hidden_dim
        valid, flat_reverse = reversed_positions(lengths, steps)
        x = Lookup()(np.ascontiguousarray(ids.T).ravel(), self.embed.W)  # (T*B, E), time-major
        x = F.dropout(x, self.dropout)
        for layer in range(self.layers):
            # One matmul gives every step's input projection for both directions: (T*B, D*4H).
            projections = F.linear(x, getattr(self, f"w_in{layer}"), getattr(self, f"bias{layer}"))
            projections = F.reshape(projections, (steps * batch, directions, 4 * h_dim))
            if directions == 2:  # the backward direction reads each text's own tokens reversed
                forward, backward = F.separate(projections, axis=1)
                projections = F.stack([forward, F.permutate(backward, flat_reverse)], axis=1)
            projections = F.reshape(projections, (steps, batch, directions, 4 * h_dim))
            hs = Recurrence()(F.transpose(projections, (0, 2, 1, 3)), getattr(self, f"w_rec{layer}"))  # (T, D, B, H)
            if layer + 1 < self.layers:
                x = self._next_input(hs, flat_reverse, steps, batch)
        mask = np.where(valid, 0.0, -1e4).astype(np.float32)[:, None, :, None]  # (T, 1, B, 1)
        pooled = F.max(hs + mask, axis=0)  # (D, B, H)
        return F.reshape(F.transpose(pooled, (1, 0, 2)), (batch, directions * h_dim))

    def _next_input(self, hs: chainer.Variable, flat_reverse: np.ndarray, steps: int, batch: int):
        """The next layer's (T*B, D*H) input: both directions' states of the same token, with dropout."""
        h_dim = self.hidden_dim
        states = [F.reshape(hs[:, 0], (steps * batch, h_dim))]
        if self.directions == 2:  # the backward states are in each text's reversed order: put them back
            states.append(F.permutate(F.reshape(hs[:, 1], (steps * batch, h_dim)), flat_reverse))
        return F.dropout(F.concat(states, axis=1), self.dropout)


class Classifier(chainer.Chain):
    """An encoder's sentence vector -> dropout -> a linear layer -> label logits.

    Args: encoder (an `Encoder`), n_labels, dropout. Call with `ids` (B, T) int32
    and `lengths` (B,); returns logits (B, n_labels).
    """

    def __init__(self, encoder: Encoder, n_labels: int, dropout: float = 0.0):
        super().__init__()
        self.dropout = dropout
        with self.init_scope():
            self.encoder = encoder
            self.output = L.Linear(encoder.directions * encoder.hidden_dim, n_labels)

    def forward(self, ids: np.ndarray, lengths: np.ndarray) -> chainer.Variable:
        return self.output(F.dropout(self.encoder(ids, lengths), self.dropout))


def build_network(network: dict) -> Classifier:
    """A Classifier from the manifest's `network` dims."""
    encoder = Encoder(network["n_vocab"], network["embed_dim"], network["hidden_dim"], network["layers"],
                      network["bidirectional"], network["dropout"])
    return Classifier(encoder, network["n_labels"], network["dropout"])


def network_weights(network: chainer.Link) -> dict[str, np.ndarray]:
    """A copy of every parameter, by the name `lstm.npz` stores it under ("encoder/embed/W")."""
    return {path.lstrip("/"): param.array.copy() for path, param in network.namedparams()}


def set_network_weights(network: chainer.Link, weights: dict[str, np.ndarray]) -> None:
    """Copy `weights` (as `network_weights` names them) into the network's parameters."""
    for path, param in network.namedparams():
        param.array[...] = weights[path.lstrip("/")]
