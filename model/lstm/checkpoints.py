"""Resumable training: what a checkpoint holds, and writing and reading it atomically.

A checkpoint (`lstm-checkpoint.npz` in the job's checkpoint dir) holds the
network's weights, those of the last epochs' ends (averaged into the model) and
of the best epoch's model, Adam's state, NumPy's global RNG (dropout
draws from it) and the loop's counters, under a fingerprint of the hyperparameters
and data: one made from anything else is not resumed.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import chainer
import numpy as np
from chainer import serializers

from model.context import TrainingContext
from model.datasets import Example
from model.lstm.network import Classifier, network_weights, set_network_weights
from model.lstm.spec import CHECKPOINT_FILE
from model.preprocessing import PREPROCESSING

CHECKPOINT_FORMAT = 2  # 2: with the last epochs' weights


class TrainingState:
    """Everything a checkpoint holds besides the network and optimizer: where the loop is, the
    running loss and accuracy of the epoch in progress, the weights at the last epochs' ends (newest
    last; their mean is the model) and early stopping's best epoch and its model's weights."""

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
        self.recent_weights: list[dict[str, np.ndarray]] = []
        self.best_weights: dict[str, np.ndarray] | None = None

    def meta(self) -> dict:
        return {k: v for k, v in vars(self).items() if k not in ("recent_weights", "best_weights")}


def fingerprint(train_set: Sequence[Example], validation: Sequence[Example] | None, params: dict) -> str:
    """What a checkpoint must have been made from to be resumed: hyperparameters, data, code format."""
    digest = hashlib.sha256(json.dumps({"params": params, "preprocessing": PREPROCESSING,
                                        "format": CHECKPOINT_FORMAT}, sort_keys=True).encode())
    for name, examples in (("train", train_set), ("validation", validation or [])):
        digest.update(f"\0{name}\0".encode())
        for example in examples:
            digest.update(f"{example.label}\t{example.text}\n".encode())
    return digest.hexdigest()[:16]


def checkpoint_path(context: TrainingContext) -> Path | None:
    """Where this job checkpoints; None (logged) without a checkpoint dir or when it is not writable."""
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


def _json_array(value: object) -> np.ndarray:
    return np.frombuffer(json.dumps(value).encode(), np.uint8)


def save_checkpoint(path: Path, network: Classifier, optimizer: chainer.Optimizer, state: TrainingState,
                    vocabulary: list[str], data_fingerprint: str) -> None:
    """Write the checkpoint to a temporary file, fsync it, then rename it over `path`."""
    arrays: dict[str, np.ndarray] = {"meta": _json_array({**state.meta(), "fingerprint": data_fingerprint}),
                                     "vocabulary": _json_array(vocabulary)}
    arrays.update({f"model/{k}": v for k, v in network_weights(network).items()})
    for number, weights in enumerate(state.recent_weights):
        arrays.update({f"recent{number}/{k}": v for k, v in weights.items()})
    if state.best_weights is not None:
        arrays.update({f"best/{k}": v for k, v in state.best_weights.items()})
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


def load_checkpoint(path: Path, network: Classifier, optimizer: chainer.Optimizer, data_fingerprint: str,
                    log: Callable[[str], None]) -> tuple[TrainingState, list[str]] | None:
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
    if meta.get("fingerprint") != data_fingerprint:
        log(f"checkpoint {path} was made with other hyperparameters or data (fingerprint "
            f"{meta.get('fingerprint')} != {data_fingerprint}); starting fresh")
        return None
    state = TrainingState()
    for key in state.meta():
        setattr(state, key, meta[key])
    set_network_weights(network, _under(arrays, "model/"))
    while recent := _under(arrays, f"recent{len(state.recent_weights)}/"):
        state.recent_weights.append(recent)
    state.best_weights = _under(arrays, "best/") or None
    serializers.NpzDeserializer(_under(arrays, "optimizer/")).load(optimizer)
    position, has_gauss = (int(v) for v in arrays["rng/extra"])
    np.random.set_state(("MT19937", arrays["rng/keys"], position, has_gauss, float(arrays["rng/cached"])))
    return state, json.loads(arrays["vocabulary"].tobytes())


def _under(arrays: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
