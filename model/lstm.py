"""A (bi)LSTM sentence classifier in Chainer, trained and served like the fastText one.

The network, in the style of Chainer's examples/text_classification:

    ids (B, T) -> EmbedID -> (Bi)LSTM encoder -> max over time -> (B, D*H)
               -> dropout -> Linear -> logits (B, labels)

Speed (2 CPU cores, no GPU) comes from doing the little work an LSTM needs
with few Python-level steps:

- the input projections of all time steps (and both directions) are one matmul;
- the recurrence of both directions runs in one Chainer function node
  (`_Recurrence`) whose forward and backward loop over time in NumPy, instead
  of a graph of five Chainer functions per step and direction;
- minibatches are length-bucketed (shuffled, then sorted by length within
  chunks of `bucket_batches` minibatches) so padding is small, and long texts
  are truncated to `max_len` tokens.

Padding goes after the tokens, and the backward direction reads each text
reversed (its own tokens only), so padding never reaches a real position's
state; padded positions are masked out of the max-pooling.

Training is reproducible: weights are initialised from `seed`, each epoch's
minibatch order from (seed, epoch), and dropout draws from NumPy's global RNG,
whose state is checkpointed. Bit-identical weights need the same number of
BLAS threads too (the job's CPU count: OpenBLAS sums in a thread-count-dependent
order); the optional fastText pretraining runs on one thread for the same reason.
Checkpoints (`lstm-checkpoint.npz` in the job's
checkpoint dir) are written at the end of every epoch and, on SIGTERM, at the
minibatch in progress (mid-epoch): a restarted job continues from exactly that
minibatch and ends with the weights an uninterrupted run would have.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import math
import os
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

import chainer
import chainer.functions as F
import chainer.links as L
import numpy as np
from chainer import optimizers, serializers

from model.context import TrainingContext, TrainingInterrupted
from model.datasets import Example
from model.hyperparameters import Param, Spec
from model.predictor import Prediction
from model.preprocessing import PREPROCESSING, clean_text, preprocessor

SPEC = Spec(
    Param("epochs", int, 3, "most passes over the training data (early stopping may stop sooner)", 1, 1000),
    Param("batch_size", int, 256, "texts per minibatch", 1, 100_000),
    Param("learning_rate", float, 0.002, "Adam's step size (alpha)", 1e-6, 1),
    Param("embed_dim", int, 128, "size of word vectors", 2, 2048),
    Param("hidden_dim", int, 64, "LSTM units per direction", 2, 2048),
    Param("layers", int, 1, "stacked LSTM layers", 1, 8),
    Param("bidirectional", bool, True, "also read each text right to left"),
    Param("dropout", float, 0.3, "dropout on word vectors and on the sentence vector", 0, 0.95),
    Param("max_vocab", int, 50_000, "most frequent words kept; the rest are unknown", 10, 10_000_000),
    Param("min_count", int, 2, "words seen fewer times are unknown", 1, 1_000_000),
    Param("max_len", int, 64, "tokens kept per text (longer texts are truncated)", 1, 10_000),
    Param("early_stopping", bool, True, "stop when validation accuracy stops improving and keep the "
                                        "best epoch's weights (needs a validation channel; else ignored)"),
    Param("patience", int, 2, "early stopping: epochs without improvement before stopping", 1, 1000),
    Param("grad_clip", float, 5.0, "clip the gradient's global L2 norm to this (0: no clipping)", 0, 1e6),
    Param("weight_decay", float, 0.0, "L2 weight decay (0: none)", 0, 1),
    Param("bucket_batches", int, 20, "minibatches per length-sorted chunk (1: no length bucketing)", 1, 100_000),
    Param("pretrain_epochs", int, 0, "first learn word vectors from the training texts with fastText skipgram "
                                     "for this many epochs to initialise the embeddings (0: random init)", 0, 100),
    Param("seed", int, 0, "random seed: the same seed and data give the same weights", 0, 2**31 - 1),
)

PAD, UNK = 0, 1  # vocabulary ids
WEIGHTS_FILE = "lstm.npz"
VOCAB_FILE = "vocab.json"
CHECKPOINT_FILE = "lstm-checkpoint.npz"
CHECKPOINT_FORMAT = 1
PREDICT_BATCH = 512


# ---------------------------------------------------------------------------------------- network

def _sigmoid(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)) into `out`; NumPy's float32 exp is SIMD, several times faster than its tanh."""
    np.negative(x, out=out)
    np.exp(out, out=out)
    out += 1
    return np.reciprocal(out, out=out)


def _tanh(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """tanh(x) = 2 sigmoid(2x) - 1 into `out`."""
    np.multiply(x, -2, out=out)
    np.exp(out, out=out)
    out += 1
    np.reciprocal(out, out=out)
    out *= 2
    out -= 1
    return out


class _Recurrence(chainer.Function):
    """The LSTM recurrence of D directions at once, looped over time in NumPy.

    Inputs: `xp` (T, D, B, 4H), the input projections plus bias of every step,
    gates in the order input, forget, cell, output; `w` (D, H, 4H), the
    recurrent weights. Output: `hs` (T, D, B, H), the hidden states. Initial
    states are zero. Backward is plain backpropagation through time.
    Gates are laid out as input, forget, output (sigmoid), cell (tanh) blocks of H.
    """

    def forward(self, inputs: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray]:
        xp, w = inputs
        steps, directions, batch, four_h = xp.shape
        h_dim = four_h // 4
        gates = np.empty_like(xp)  # activations: i, f, o, g
        cells = np.empty((steps, directions, batch, h_dim), np.float32)
        tanh_cells = np.empty_like(cells)
        hs = np.empty_like(cells)
        h = np.zeros((directions, batch, h_dim), np.float32)
        c = np.zeros_like(h)
        z = np.empty((directions, batch, four_h), np.float32)
        with np.errstate(over="ignore"):  # exp(large) = inf gives the right limits
            for t in range(steps):
                np.matmul(h, w, out=z)
                z += xp[t]
                act = gates[t]
                _sigmoid(z[..., :3 * h_dim], act[..., :3 * h_dim])
                _tanh(z[..., 3 * h_dim:], act[..., 3 * h_dim:])
                i, f, o, g = (act[..., k * h_dim:(k + 1) * h_dim] for k in range(4))
                np.multiply(f, c, out=c)
                c += i * g
                cells[t] = c
                _tanh(c, tanh_cells[t])
                np.multiply(o, tanh_cells[t], out=hs[t])
                h = hs[t]
        self.saved = (gates, cells, tanh_cells, hs)
        return (hs,)

    def backward(self, inputs: tuple[np.ndarray, np.ndarray], grads: tuple[np.ndarray | None]):
        xp, w = inputs
        (g_hs,) = grads
        gates, cells, tanh_cells, hs = self.saved
        steps, directions, batch, four_h = xp.shape
        h_dim = four_h // 4
        g_xp = np.empty_like(xp)
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
            dz = g_xp[t]
            dz[..., :h_dim] = dc * g * i * (1 - i)
            dz[..., h_dim:2 * h_dim] = dc * c_prev * f * (1 - f)
            dz[..., 2 * h_dim:3 * h_dim] = dh * tc * o * (1 - o)
            dz[..., 3 * h_dim:] = dc * i * (1 - g * g)
            dc *= f
            dh_next = np.matmul(dz, w_t)
        # dW = sum over steps of h_{t-1}^T dz_t: one matmul over all steps.
        h_prev = np.concatenate([zero[None], hs[:-1]]).transpose(1, 3, 0, 2).reshape(directions, h_dim, -1)
        g_w = np.matmul(h_prev, g_xp.transpose(1, 0, 2, 3).reshape(directions, -1, four_h))
        del self.saved
        return g_xp, g_w


class _Lookup(chainer.Function):
    """Rows `ids` of the table `w`: (N,) ids, (V, E) table -> (N, E). Unlike Chainer's EmbedID, whose
    CPU backward loops over ids in Python, the backward sums the gradient rows of each id with one
    sort and `np.add.reduceat`."""

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
        positions = np.arange(steps)[:, None]  # (T, 1)
        valid = positions < lengths[None, :]  # (T, B)
        # Time-major (T*B) rows; `flat_reverse` maps each text's tokens to their reversed positions.
        reverse = np.where(valid, lengths[None, :] - 1 - positions, positions)  # an involution on (T, B)
        flat_reverse = (reverse * batch + np.arange(batch)[None, :]).ravel().astype(np.int32)
        x = _Lookup()(np.ascontiguousarray(ids.T).ravel(), self.embed.W)  # (T*B, E)
        x = F.dropout(x, self.dropout)
        for layer in range(self.layers):
            # One matmul gives every step's input projection for both directions: (T*B, D*4H).
            xp = F.linear(x, getattr(self, f"w_in{layer}"), getattr(self, f"bias{layer}"))
            xp = F.reshape(xp, (steps * batch, directions, 4 * h_dim))
            if directions == 2:  # the backward direction reads each text's own tokens reversed
                forward, backward = F.separate(xp, axis=1)
                xp = F.stack([forward, F.permutate(backward, flat_reverse)], axis=1)
            xp = F.reshape(xp, (steps, batch, directions, 4 * h_dim))
            hs = _Recurrence()(F.transpose(xp, (0, 2, 1, 3)), getattr(self, f"w_rec{layer}"))  # (T, D, B, H)
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


# ----------------------------------------------------------------------------------- vocabulary

def build_vocabulary(texts: Sequence[str], max_vocab: int, min_count: int) -> list[str]:
    """Words of the cleaned `texts`, most frequent first, after the padding and unknown entries."""
    counts = Counter(word for text in texts for word in text.split())
    words = sorted((w for w, n in counts.items() if n >= min_count), key=lambda w: (-counts[w], w))
    return ["<pad>", "<unk>", *words[:max(0, max_vocab - 2)]]


def encode(cleaned: str, index: dict[str, int], max_len: int) -> list[int]:
    """Token ids of one cleaned text, truncated to max_len; an empty text is one unknown word."""
    ids = [index.get(word, UNK) for word in cleaned.split()[:max_len]]
    return ids or [UNK]


def _pad(sequences: Sequence[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    lengths = np.array([len(s) for s in sequences], np.int32)
    ids = np.full((len(sequences), int(lengths.max())), PAD, np.int32)
    for row, sequence in enumerate(sequences):
        ids[row, :len(sequence)] = sequence
    return ids, lengths


# ------------------------------------------------------------------------------------ predictor

class LSTMPredictor:
    """A trained Classifier, its vocabulary and labels, and the cleaning of its training text."""

    def __init__(self, network: Classifier, vocabulary: list[str], labels: list[str], dims: dict, max_len: int,
                 manifest: dict):
        self.network = network
        self.vocabulary = vocabulary
        self.index = {word: i for i, word in enumerate(vocabulary)}
        self.labels = labels
        self.dims = dims
        self.max_len = max_len
        self.manifest = manifest
        self.preprocess = preprocessor(manifest["preprocessing"])

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), labels) softmax probabilities; batched by length, returned in input order."""
        sequences = [encode(self.preprocess(text), self.index, self.max_len) for text in texts]
        order = np.argsort([len(s) for s in sequences], kind="stable")
        probs = np.empty((len(texts), len(self.labels)), np.float32)
        with chainer.using_config("train", False), chainer.no_backprop_mode(), \
                chainer.using_config("type_check", False):
            for start in range(0, len(order), PREDICT_BATCH):
                chunk = order[start:start + PREDICT_BATCH]
                ids, lengths = _pad([sequences[i] for i in chunk])
                probs[chunk] = F.softmax(self.network(ids, lengths)).array
        return probs

    def predict(self, texts: Sequence[str], k: int = 1) -> list[Prediction]:
        if not len(texts):
            return []
        probs = self.probabilities(texts)
        k = max(1, min(k, len(self.labels)))
        top = np.argsort(-probs, axis=1, kind="stable")[:, :k]
        return [Prediction([self.labels[j] for j in row], [float(p) for p in probs[i, row]])
                for i, row in enumerate(top)]

    def save(self, model_dir: Path) -> dict:
        serializers.save_npz(str(model_dir / WEIGHTS_FILE), self.network)
        (model_dir / VOCAB_FILE).write_text(json.dumps(self.vocabulary, ensure_ascii=False) + "\n", encoding="utf-8")
        return {"weights_file": WEIGHTS_FILE, "vocab_file": VOCAB_FILE, "network": self.dims,
                "max_len": self.max_len}


def load(model_dir: Path, manifest: dict) -> LSTMPredictor:
    """The model `save` wrote into `model_dir`, with the manifest the job wrote next to it."""
    vocabulary = json.loads((model_dir / manifest.get("vocab_file", VOCAB_FILE)).read_text(encoding="utf-8"))
    dims = manifest["network"]
    if dims["n_vocab"] != len(vocabulary) or dims["n_labels"] != len(manifest["labels"]):
        raise ValueError(f"{model_dir}: the vocabulary or labels do not match the manifest's network dims")
    network = build_network(dims)
    serializers.load_npz(str(model_dir / manifest.get("weights_file", WEIGHTS_FILE)), network)
    return LSTMPredictor(network, vocabulary, list(manifest["labels"]), dims, manifest["max_len"], manifest)


# ------------------------------------------------------------------------------------- training

def minibatches(lengths: np.ndarray, batch_size: int, bucket_batches: int, seed: int, epoch: int) -> list[np.ndarray]:
    """One epoch's minibatches (arrays of example indices): shuffled, then sorted by length within
    chunks of `bucket_batches` minibatches, cut, and the minibatches shuffled. A function of (seed, epoch)."""
    rng = np.random.RandomState([seed, epoch])
    order = rng.permutation(len(lengths))
    chunk = batch_size * bucket_batches
    batches = []
    for start in range(0, len(order), chunk):
        part = order[start:start + chunk]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches += [part[i:i + batch_size] for i in range(0, len(part), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def fingerprint(train_set: Sequence[Example], validation: Sequence[Example] | None, params: dict) -> str:
    """What a checkpoint must have been made from to be resumed: hyperparameters, data, code format."""
    digest = hashlib.sha256(json.dumps({"params": params, "preprocessing": PREPROCESSING,
                                        "format": CHECKPOINT_FORMAT}, sort_keys=True).encode())
    for name, examples in (("train", train_set), ("validation", validation or [])):
        digest.update(f"\0{name}\0".encode())
        for example in examples:
            digest.update(f"{example.label}\t{example.text}\n".encode())
    return digest.hexdigest()[:16]


def _set_threads(threads: int) -> None:
    """Best effort: NumPy's bundled OpenBLAS uses `threads` threads."""
    for name in ("openblas_set_num_threads64_", "openblas_set_num_threads", "scipy_openblas_set_num_threads64_"):
        for library in _openblas_libraries():
            function = getattr(library, name, None)
            if function is not None:
                function(ctypes.c_int(max(1, threads)))
                return


def _openblas_libraries() -> Iterator[ctypes.CDLL]:
    folder = Path(np.__file__).parent.parent / "numpy.libs"
    for path in sorted(folder.glob("libopenblas*.so*")) if folder.is_dir() else []:
        try:
            yield ctypes.CDLL(str(path))
        except OSError:
            continue


class _State:
    """Everything a checkpoint holds besides the network and optimizer."""

    def __init__(self) -> None:
        self.epoch = 0  # epochs completed
        self.batch = 0  # minibatches done in the epoch in progress
        self.loss_sum = 0.0
        self.loss_count = 0
        self.correct = 0
        self.best_score = -1.0
        self.best_epoch = 0
        self.since_best = 0
        self.finished = False
        self.best_weights: dict[str, np.ndarray] | None = None

    def meta(self) -> dict:
        return {k: v for k, v in vars(self).items() if k != "best_weights"}


def _weights(network: chainer.Link) -> dict[str, np.ndarray]:
    return {path: param.array.copy() for path, param in network.namedparams()}


def _set_weights(network: chainer.Link, weights: dict[str, np.ndarray]) -> None:
    for path, param in network.namedparams():
        param.array[...] = weights[path]


def _json_array(value: object) -> np.ndarray:
    return np.frombuffer(json.dumps(value).encode(), np.uint8)


def _save_checkpoint(path: Path, network: Classifier, optimizer: chainer.Optimizer, state: _State,
                     vocabulary: list[str], print_: str) -> None:
    arrays: dict[str, np.ndarray] = {"meta": _json_array({**state.meta(), "fingerprint": print_}),
                                     "vocabulary": _json_array(vocabulary)}
    arrays.update({f"model{k}": v for k, v in _weights(network).items()})
    if state.best_weights is not None:
        arrays.update({f"best{k}": v for k, v in state.best_weights.items()})
    serializer = serializers.DictionarySerializer()
    serializer.save(optimizer)
    arrays.update({f"optimizer/{k}": np.asarray(v) for k, v in serializer.target.items()})
    _, keys, position, has_gauss, cached = np.random.get_state()
    arrays.update({"rng/keys": keys, "rng/extra": np.array([position, has_gauss]), "rng/cached": np.array(cached)})
    temporary = path.with_name(path.name + f".tmp{os.getpid()}")
    with temporary.open("wb") as stream:
        np.savez(stream, **arrays)
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(temporary, path)


def _load_checkpoint(path: Path, network: Classifier, optimizer: chainer.Optimizer, print_: str,
                     log) -> tuple[_State, list[str]] | None:
    """The checkpoint's state and vocabulary, with network, optimizer and NumPy's RNG restored;
    None (and a log line saying why) when there is none to resume."""
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        meta = json.loads(arrays["meta"].tobytes())
    except Exception as error:  # a damaged file is no reason to fail the job
        log(f"checkpoint {path} is unreadable ({type(error).__name__}: {error}); starting fresh")
        return None
    if meta.get("fingerprint") != print_:
        log(f"checkpoint {path} was made with other hyperparameters or data (fingerprint "
            f"{meta.get('fingerprint')} != {print_}); starting fresh")
        return None
    state = _State()
    for key in state.meta():
        setattr(state, key, meta[key])
    _set_weights(network, {k[len("model"):]: v for k, v in arrays.items() if k.startswith("model/")})
    best = {k[len("best"):]: v for k, v in arrays.items() if k.startswith("best/")}
    state.best_weights = best or None
    target = {k[len("optimizer/"):]: v for k, v in arrays.items() if k.startswith("optimizer/")}
    serializers.NpzDeserializer(target).load(optimizer)
    position, has_gauss = (int(v) for v in arrays["rng/extra"])
    np.random.set_state(("MT19937", arrays["rng/keys"], position, has_gauss, float(arrays["rng/cached"])))
    return state, json.loads(arrays["vocabulary"].tobytes())


def _accuracy(model: LSTMPredictor, examples: Sequence[Example]) -> float:
    predicted = model.predict([e.text for e in examples], k=1)
    return sum(p.labels[0] == e.label for p, e in zip(predicted, examples)) / len(examples)


def train(train_set: list[Example], validation: list[Example] | None, params: dict,
          context: TrainingContext) -> LSTMPredictor:
    """Train on `train_set`; with early_stopping and `validation`, keep the best epoch's weights."""
    log = context.log
    chainer.config.use_cudnn = "never"
    _set_threads(context.threads)
    labels = sorted({e.label for e in train_set})
    label_ids = {label: i for i, label in enumerate(labels)}
    cleaned = [clean_text(e.text) for e in train_set]
    print_ = fingerprint(train_set, validation, params)

    checkpoint = _checkpoint_path(context)
    np.random.seed(params["seed"])
    vocabulary = build_vocabulary(cleaned, params["max_vocab"], params["min_count"])
    dims = {"n_vocab": len(vocabulary), "n_labels": len(labels), "embed_dim": params["embed_dim"],
            "hidden_dim": params["hidden_dim"], "layers": params["layers"],
            "bidirectional": params["bidirectional"], "dropout": params["dropout"]}
    network = build_network(dims)
    optimizer = optimizers.Adam(alpha=params["learning_rate"])
    optimizer.setup(network)
    if params["grad_clip"] > 0:
        optimizer.add_hook(chainer.optimizer_hooks.GradientClipping(params["grad_clip"]))
    if params["weight_decay"] > 0:
        optimizer.add_hook(chainer.optimizer_hooks.WeightDecay(params["weight_decay"]))

    state = _State()
    resumed = None if checkpoint is None else _load_checkpoint(checkpoint, network, optimizer, print_, log)
    if resumed is not None:
        state, vocabulary = resumed
        log(f"resumed from checkpoint {checkpoint}: epoch {state.epoch} complete, "
            f"{state.batch} minibatches of epoch {state.epoch + 1} done")
    elif params["pretrain_epochs"]:
        _pretrain_embeddings(network.encoder.embed.W.array, vocabulary, cleaned, params, context)
    model = LSTMPredictor(network, vocabulary, labels, dims, params["max_len"],
                          {"algorithm": "lstm", "preprocessing": PREPROCESSING})
    index = model.index
    sequences = [encode(text, index, params["max_len"]) for text in cleaned]
    lengths = np.array([len(s) for s in sequences])
    targets = np.array([label_ids[e.label] for e in train_set], np.int32)
    stopping = params["early_stopping"] and bool(validation)
    if params["early_stopping"] and not validation:
        log("early_stopping: no validation channel, training all epochs")
    log(f"lstm: {len(train_set)} texts, vocabulary {len(vocabulary)} words, labels {labels}, "
        f"mean length {lengths.mean():.1f} tokens, {context.threads} threads")

    def save(reason: str) -> None:
        if checkpoint is not None:
            started = time.monotonic()
            _save_checkpoint(checkpoint, network, optimizer, state, vocabulary, print_)
            log(f"checkpoint saved ({reason}) in {time.monotonic() - started:.1f} s: {checkpoint}")

    epochs = params["epochs"]
    while not state.finished and state.epoch < epochs:
        epoch = state.epoch + 1
        batches = minibatches(lengths, params["batch_size"], params["bucket_batches"], params["seed"], epoch)
        if state.batch == 0:
            np.random.seed([params["seed"], epoch, 1])  # dropout of this epoch
        started, seen = time.monotonic(), 0
        with chainer.using_config("train", True), chainer.using_config("type_check", False):
            for number in range(state.batch, len(batches)):
                if context.stop_requested():
                    save(f"stop requested in epoch {epoch}, after minibatch {number}/{len(batches)}")
                    resumes = "the checkpoint resumes from there" if checkpoint else "no checkpoint dir: not saved"
                    raise TrainingInterrupted(f"stopped in epoch {epoch} after minibatch {number}; {resumes}")
                batch = batches[number]
                ids, batch_lengths = _pad([sequences[i] for i in batch])
                logits = network(ids, batch_lengths)
                loss = F.softmax_cross_entropy(logits, targets[batch])
                network.cleargrads()
                loss.backward()
                optimizer.update()
                state.loss_sum += float(loss.array) * len(batch)
                state.loss_count += len(batch)
                state.correct += int((logits.array.argmax(axis=1) == targets[batch]).sum())
                state.batch = number + 1
                seen += len(batch)
        seconds = time.monotonic() - started
        log(f"epoch {epoch}/{epochs}: train:loss={state.loss_sum / state.loss_count:.4f} "
            f"train:accuracy={state.correct / state.loss_count:.4f} "
            f"tweets/s={seen / max(seconds, 1e-9):.0f} seconds={seconds:.1f}")
        state.epoch, state.batch, state.loss_sum, state.loss_count, state.correct = epoch, 0, 0.0, 0, 0
        if validation:
            accuracy = _accuracy(model, validation)
            log(f"epoch {epoch}/{epochs}: validation:accuracy={accuracy:.4f}")
            if accuracy > state.best_score:
                state.best_score, state.best_epoch, state.since_best = accuracy, epoch, 0
                state.best_weights = _weights(network) if stopping else None
            else:
                state.since_best += 1
                if stopping and state.since_best >= params["patience"]:
                    log(f"early stopping: no improvement for {state.since_best} epochs")
                    state.finished = True
        save(f"epoch {epoch} complete")
    if stopping and state.best_weights is not None:
        _set_weights(network, state.best_weights)
        log(f"early stopping: keeping epoch {state.best_epoch} validation:accuracy={state.best_score:.4f}")
    return model


def _pretrain_embeddings(table: np.ndarray, vocabulary: list[str], cleaned: list[str], params: dict,
                         context: TrainingContext) -> None:
    """Fill the (V, E) embedding `table` (except padding) with fastText skipgram vectors learned from the
    cleaned training texts, scaled to the random init's spread. One fastText thread: reproducible."""
    import fasttext  # only this option needs it

    started = time.monotonic()
    corpus = context.work_dir / "lstm-pretrain.txt"
    corpus.write_text("".join(text + "\n" for text in cleaned), encoding="utf-8")
    vectors = fasttext.train_unsupervised(str(corpus), model="skipgram", dim=table.shape[1],
                                          epoch=params["pretrain_epochs"], minCount=params["min_count"],
                                          thread=1, verbose=0)
    corpus.unlink()
    learned = np.stack([vectors.get_word_vector(word) for word in vocabulary[UNK + 1:]]).astype(np.float32)
    table[UNK + 1:] = learned * (table[UNK + 1:].std() / max(float(learned.std()), 1e-6))
    context.log(f"pretrained {len(learned)} word vectors with fastText in {time.monotonic() - started:.1f} s")


def _checkpoint_path(context: TrainingContext) -> Path | None:
    if context.checkpoint_dir is None:
        return None
    try:
        context.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        probe = context.checkpoint_dir / f".lstm-write-test{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        context.log(f"warning: checkpoint dir {context.checkpoint_dir} is not writable ({error.strerror}); "
                    "training without checkpoints")
        return None
    return context.checkpoint_dir / CHECKPOINT_FILE
