"""The classifier's forward pass for serving, in NumPy alone: no graph, no Variables, no dropout.

It computes what `network.Classifier` computes in Chainer's test mode, from the
same weights (`lstm.npz`), with the arrays of a pass allocated once before its
loop over time, and keeps of the recurrence only what the next step needs.
"""

from __future__ import annotations

import numpy as np

from model.lstm.activations import sigmoid, tanh


def reversed_positions(lengths: np.ndarray, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """(valid (T, B) bool: which positions hold tokens, flat_reverse (T*B,) int32).

    Rows are time-major (row t*B + b is text b's token t); `flat_reverse` maps each
    text's tokens to their reversed positions and padding to itself (an involution),
    so the backward direction reads each text's own tokens right to left.
    """
    batch = len(lengths)
    positions = np.arange(steps)[:, None]  # (T, 1)
    valid = positions < lengths[None, :]
    reverse = np.where(valid, lengths[None, :] - 1 - positions, positions)
    return valid, (reverse * batch + np.arange(batch)[None, :]).ravel().astype(np.int32)


class InferenceNetwork:
    """The trained classifier as plain arrays: ids -> label probabilities.

    Args: weights, `lstm.npz`'s arrays by name: encoder/embed/W (V, E);
    per layer l, encoder/w_in{l} (D*4H, in), encoder/w_rec{l} (D, H, 4H),
    encoder/bias{l} (D*4H,); output/W (labels, D*H), output/b (labels,).
    dims: the manifest's network dims (layers, bidirectional: D = 2, else 1;
    hidden_dim H). Read only after construction, so threads may share one.
    """

    def __init__(self, weights: dict[str, np.ndarray], dims: dict):
        self.directions = 2 if dims["bidirectional"] else 1
        self.hidden_dim = dims["hidden_dim"]
        self.embed = np.ascontiguousarray(weights["encoder/embed/W"], np.float32)
        # (in, D*4H) so that one row-major matmul projects every step of every direction.
        self.layers = [(np.ascontiguousarray(weights[f"encoder/w_in{layer}"].T, np.float32),
                        np.ascontiguousarray(weights[f"encoder/bias{layer}"], np.float32),
                        np.ascontiguousarray(weights[f"encoder/w_rec{layer}"], np.float32))
                       for layer in range(dims["layers"])]
        self.output_w = np.ascontiguousarray(weights["output/W"].T, np.float32)  # (D*H, labels)
        self.output_b = np.ascontiguousarray(weights["output/b"], np.float32)

    def probabilities(self, ids: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Softmax probabilities (B, labels) float32 of `ids` (B, T) int32, left-aligned and padded
        with 0, whose texts have `lengths` (B,) >= 1 tokens."""
        batch, steps = ids.shape
        directions, h_dim = self.directions, self.hidden_dim
        valid, flat_reverse = reversed_positions(lengths, steps)
        x = self.embed[ids.T.ravel()]  # (T*B, E), time-major
        for layer, (w_in, bias, w_rec) in enumerate(self.layers):
            projections = (x @ w_in).reshape(steps * batch, directions, 4 * h_dim)
            projections += bias.reshape(directions, 4 * h_dim)
            by_step = np.empty((steps, directions, batch, 4 * h_dim), np.float32)
            by_step[:, 0] = projections[:, 0].reshape(steps, batch, 4 * h_dim)
            if directions == 2:  # the backward direction reads each text's own tokens reversed
                by_step[:, 1] = projections[flat_reverse, 1].reshape(steps, batch, 4 * h_dim)
            hs = recurrence(by_step, w_rec)  # (T, D, B, H)
            if layer + 1 < len(self.layers):  # both directions' states of the same token
                states = [hs[:, 0].reshape(steps * batch, h_dim)]
                if directions == 2:
                    states.append(hs[:, 1].reshape(steps * batch, h_dim)[flat_reverse])
                x = np.concatenate(states, axis=1)
        hs += np.where(valid, 0.0, -1e4).astype(np.float32)[:, None, :, None]  # padding out of the max
        pooled = hs.max(axis=0).transpose(1, 0, 2).reshape(batch, directions * h_dim)
        logits = pooled @ self.output_w + self.output_b
        logits -= logits.max(axis=1, keepdims=True)
        np.exp(logits, out=logits)
        logits /= logits.sum(axis=1, keepdims=True)
        return logits


def recurrence(projections: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The hidden states (T, D, B, H) of D directions from zero states, given every step's input
    projections plus bias `projections` (T, D, B, 4H) and the recurrent weights `w` (D, H, 4H);
    gates in blocks of H: input, forget, output (sigmoid), cell candidate g (tanh)."""
    steps, directions, batch, four_h = projections.shape
    h_dim = four_h // 4
    hs = np.empty((steps, directions, batch, h_dim), np.float32)
    c = np.zeros((directions, batch, h_dim), np.float32)
    z = np.empty((directions, batch, four_h), np.float32)
    act = np.empty_like(z)
    i, f, o, g = (act[..., k * h_dim:(k + 1) * h_dim] for k in range(4))
    input_cell = np.empty_like(c)
    tanh_cell = np.empty_like(c)
    with np.errstate(over="ignore"):  # exp(large) = inf gives the right limits
        for t in range(steps):
            if t:
                np.matmul(hs[t - 1], w, out=z)
                z += projections[t]
            else:  # zero initial state: nothing to multiply
                z[...] = projections[0]
            sigmoid(z[..., :3 * h_dim], act[..., :3 * h_dim])
            tanh(z[..., 3 * h_dim:], g)
            c *= f
            np.multiply(i, g, out=input_cell)
            c += input_cell
            tanh(c, tanh_cell)
            np.multiply(o, tanh_cell, out=hs[t])
    return hs
