"""The two Chainer functions training needs beyond Chainer's own: the recurrence and the embedding lookup."""

from __future__ import annotations

import chainer
import numpy as np

from model.lstm.activations import sigmoid, tanh


class Recurrence(chainer.Function):
    """The LSTM recurrence of D directions at once, looped over time in NumPy.

    Inputs: `projections` (T, D, B, 4H), the input projections plus bias of every
    step; `w` (D, H, 4H), the recurrent weights. Gates are laid out as blocks of H
    in the order input, forget, output (sigmoid), cell candidate g (tanh).
    Output: `hs` (T, D, B, H), the hidden states. Initial states are zero.
    Backward is plain backpropagation through time.
    """

    def forward(self, inputs: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray]:
        projections, w = inputs
        steps, directions, batch, four_h = projections.shape
        h_dim = four_h // 4
        gates = np.empty_like(projections)  # activations: i, f, o, g
        cells = np.empty((steps, directions, batch, h_dim), np.float32)
        tanh_cells = np.empty_like(cells)
        hs = np.empty_like(cells)
        h = np.zeros((directions, batch, h_dim), np.float32)
        c = np.zeros_like(h)
        z = np.empty((directions, batch, four_h), np.float32)
        with np.errstate(over="ignore"):  # exp(large) = inf gives the right limits
            for t in range(steps):
                np.matmul(h, w, out=z)
                z += projections[t]
                act = gates[t]
                sigmoid(z[..., :3 * h_dim], act[..., :3 * h_dim])
                tanh(z[..., 3 * h_dim:], act[..., 3 * h_dim:])
                i, f, o, g = (act[..., k * h_dim:(k + 1) * h_dim] for k in range(4))
                np.multiply(f, c, out=c)
                c += i * g
                cells[t] = c
                tanh(c, tanh_cells[t])
                np.multiply(o, tanh_cells[t], out=hs[t])
                h = hs[t]
        self.saved = (gates, cells, tanh_cells, hs)
        return (hs,)

    def backward(self, inputs: tuple[np.ndarray, np.ndarray], grads: tuple[np.ndarray | None]):
        projections, w = inputs
        (g_hs,) = grads
        gates, cells, tanh_cells, hs = self.saved
        steps, directions, batch, four_h = projections.shape
        h_dim = four_h // 4
        g_projections = np.empty_like(projections)
        dh_next = np.zeros((directions, batch, h_dim), np.float32)
        dc = np.zeros_like(dh_next)
        w_t = np.ascontiguousarray(w.transpose(0, 2, 1))
        zero = np.zeros_like(dh_next)
        for t in range(steps - 1, -1, -1):
            dh = dh_next if g_hs is None else dh_next + g_hs[t]
            act = gates[t]
            i, f, o, g = (act[..., k * h_dim:(k + 1) * h_dim] for k in range(4))
            tc = tanh_cells[t]
            dc += dh * o * (1 - tc * tc)
            c_prev = cells[t - 1] if t else zero
            dz = g_projections[t]
            dz[..., :h_dim] = dc * g * i * (1 - i)
            dz[..., h_dim:2 * h_dim] = dc * c_prev * f * (1 - f)
            dz[..., 2 * h_dim:3 * h_dim] = dh * tc * o * (1 - o)
            dz[..., 3 * h_dim:] = dc * i * (1 - g * g)
            dc *= f
            dh_next = np.matmul(dz, w_t)
        # dW = sum over steps of h_{t-1}^T dz_t: one matmul over all steps.
        h_prev = np.concatenate([zero[None], hs[:-1]]).transpose(1, 3, 0, 2).reshape(directions, h_dim, -1)
        g_w = np.matmul(h_prev, g_projections.transpose(1, 0, 2, 3).reshape(directions, -1, four_h))
        del self.saved
        return g_projections, g_w


class Lookup(chainer.Function):
    """Rows `ids` of the table `w`: (N,) ids, (V, E) table -> (N, E).

    Unlike Chainer's EmbedID, whose CPU backward loops over ids in Python, the
    backward sums the gradient rows of each id with one sort and `np.add.reduceat`.
    """

    def forward(self, inputs: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray]:
        ids, w = inputs
        return (w[ids],)

    def backward(self, inputs: tuple[np.ndarray, np.ndarray], grads: tuple[np.ndarray]):
        ids, w = inputs
        order = np.argsort(ids, kind="stable")
        ordered = ids[order]
        starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
        g_w = np.zeros_like(w)
        g_w[ordered[starts]] = np.add.reduceat(grads[0][order], starts, axis=0)
        return None, g_w
