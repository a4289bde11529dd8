"""The classifier's forward pass for serving, in NumPy alone: no graph, no Variables, no dropout.

It computes what `network.Classifier` computes in Chainer's test mode, from the
same weights (`lstm.npz`). Without dropout, the first layer's input projection
of a word (its vector times the input weights, plus bias) is the same wherever
it occurs: it is computed once per vocabulary word at load, and a pass looks it
up instead of multiplying (for vocabularies whose table fits `TABLE_BYTES`).
The arrays of a pass are allocated before its loop over time, and a time step
is a dozen NumPy calls on both directions at once. (Measured on the 2-core box:
per-direction matmuls beat one block-diagonal matmul, and np.tanh beats the
exp-based tanh training uses, at both 1 and 64 texts.)
"""

from __future__ import annotations

import numpy as np

from model.lstm.activations import sigmoid

TABLE_BYTES = 512 << 20  # most memory the precomputed first-layer projections may take (shared by the workers)


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
    encoder/bias{l} (D*4H,), each direction's gates in the order i, f, o, g;
    output/W (labels, D*H), output/b (labels,). dims: the manifest's network
    dims (layers; bidirectional: D = 2, else 1; hidden_dim H). table_bytes: the
    most memory the first layer's (V, D*4H) projection table may take, else none
    is made. Read only after construction, so threads may share one.
    """

    def __init__(self, weights: dict[str, np.ndarray], dims: dict, table_bytes: int = TABLE_BYTES):
        directions, h_dim = 2 if dims["bidirectional"] else 1, dims["hidden_dim"]
        self.directions, self.hidden_dim = directions, h_dim
        self.embed = np.ascontiguousarray(weights["encoder/embed/W"], np.float32)
        # Per layer: each direction's (in, 4H) input weights and (4H,) bias, and the (D, H, 4H) recurrent weights.
        self.layers = []
        for layer in range(dims["layers"]):
            w_in = weights[f"encoder/w_in{layer}"].reshape(directions, 4 * h_dim, -1)
            bias = weights[f"encoder/bias{layer}"].reshape(directions, 4 * h_dim)
            self.layers.append(([np.ascontiguousarray(w.T, np.float32) for w in w_in],
                                [b.astype(np.float32) for b in bias],
                                np.ascontiguousarray(weights[f"encoder/w_rec{layer}"], np.float32)))
        self.tables = None  # per direction, (V, 4H): every word's first-layer projection plus bias
        if self.embed.shape[0] * directions * 4 * h_dim * 4 <= table_bytes:
            w_ins, biases, _ = self.layers[0]
            self.tables = [self.embed @ w + b for w, b in zip(w_ins, biases)]
        self.output_w = np.ascontiguousarray(weights["output/W"].T, np.float32)  # (D*H, labels)
        self.output_b = np.ascontiguousarray(weights["output/b"], np.float32)

    def probabilities(self, ids: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Softmax probabilities (B, labels) float32 of `ids` (B, T) int32, left-aligned and padded
        with 0, whose texts have `lengths` (B,) >= 1 tokens."""
        batch, steps = ids.shape
        directions, h_dim = self.directions, self.hidden_dim
        valid, flat_reverse = reversed_positions(lengths, steps)
        time_major = ids.T.ravel()  # (T*B,)
        x = None if self.tables is not None else self.embed[time_major]  # (T*B, E)
        for layer, (w_ins, biases, w_rec) in enumerate(self.layers):
            projections = np.empty((steps, directions, batch, 4 * h_dim), np.float32)
            for d in range(directions):  # the backward direction reads each text's own tokens reversed
                if x is None:
                    words = time_major if d == 0 else time_major[flat_reverse]
                    step_rows = self.tables[d][words]
                else:
                    step_rows = (x if d == 0 else x[flat_reverse]) @ w_ins[d] + biases[d]
                projections[:, d] = step_rows.reshape(steps, batch, 4 * h_dim)
            hs = recurrence(projections, w_rec)  # (T, D, B, H)
            if layer + 1 < len(self.layers):  # the next layer reads both directions' states of a token
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
    sigmoid_gates, g = z[..., :3 * h_dim], z[..., 3 * h_dim:]
    i, f, o = (z[..., k * h_dim:(k + 1) * h_dim] for k in range(3))
    scratch = np.empty_like(c)
    with np.errstate(over="ignore"):  # exp(large) = inf gives the right limits
        for t in range(steps):
            if t:
                np.matmul(hs[t - 1], w, out=z)
                z += projections[t]
            else:  # zero initial state: nothing to multiply
                z[...] = projections[0]
            sigmoid(sigmoid_gates, sigmoid_gates)
            np.tanh(g, out=g)
            c *= f
            np.multiply(i, g, out=scratch)
            c += scratch
            np.tanh(c, out=scratch)
            np.multiply(o, scratch, out=hs[t])
    return hs
