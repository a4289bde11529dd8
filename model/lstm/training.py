"""The training loop: setup, one epoch of minibatches, and the decision at each epoch's end.

The model is the mean of the weights at the end of the last `average_epochs`
epochs: an average of nearby points of the descent lands nearer the middle of a
minimum than any one of them (validation accuracy 0.678 for the best epoch's
weights, 0.682 for the mean of epochs 2 and 3; the ensemble's out-of-sample
0.842 -> 0.845). Early stopping scores that mean at each epoch's end.

Training is reproducible: weights are initialised from `seed`, each epoch's
minibatch order from (seed, epoch), and dropout draws from NumPy's global RNG,
whose state is checkpointed. Bit-identical weights need the same number of BLAS
threads too (the job's CPU count: OpenBLAS sums in a thread-count-dependent
order); the optional fastText pretraining runs on one thread for the same reason.
Checkpoints are written at the end of every epoch and, on SIGTERM, at the
minibatch in progress: a restarted job continues from exactly that minibatch and
ends with the weights an uninterrupted run would have.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import chainer
import chainer.functions as F
import numpy as np
from chainer import optimizers

from model.context import TrainingContext, TrainingInterrupted
from model.datasets import Example
from model.lstm.checkpoints import TrainingState, checkpoint_path, fingerprint, load_checkpoint, save_checkpoint
from model.lstm.network import Classifier, build_network, network_weights
from model.lstm.predictor import LSTMPredictor
from model.lstm.vocabulary import UNK, build_vocabulary, encode, pad
from model.preprocessing import PREPROCESSING, clean_text
from model.threads import limit_math_threads


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


@dataclass
class _Run:
    """One job's moving parts: the network and its optimizer, the encoded training data
    (`sequences` of ids, their `lengths` (N,), `targets` (N,) label ids), the loop's state,
    and where it checkpoints (None: nowhere)."""

    params: dict
    context: TrainingContext
    network: Classifier
    optimizer: chainer.Optimizer
    state: TrainingState
    vocabulary: list[str]
    labels: list[str]
    dims: dict
    sequences: list[list[int]]
    lengths: np.ndarray
    targets: np.ndarray
    stopping: bool
    checkpoint: Path | None
    data_fingerprint: str

    def predictor(self, weights: dict[str, np.ndarray]) -> LSTMPredictor:
        """`weights` (as `network_weights` names them) as the served model."""
        return LSTMPredictor(weights, self.vocabulary, self.labels, self.dims, self.params["max_len"],
                             {"algorithm": "lstm", "preprocessing": PREPROCESSING})

    def save(self, reason: str) -> None:
        if self.checkpoint is not None:
            started = time.monotonic()
            save_checkpoint(self.checkpoint, self.network, self.optimizer, self.state, self.vocabulary,
                            self.data_fingerprint)
            self.context.log(f"checkpoint saved ({reason}) in {time.monotonic() - started:.1f} s: {self.checkpoint}")


def train(train_set: list[Example], validation: list[Example] | None, params: dict,
          context: TrainingContext) -> LSTMPredictor:
    """Train on `train_set`; with early_stopping and `validation`, keep the best epoch's model."""
    run = _setup(train_set, validation, params, context)
    while not run.state.finished and run.state.epoch < params["epochs"]:
        _train_epoch(run)
        _end_epoch(run, validation)
    if run.stopping and run.state.best_weights is not None:
        context.log(f"early stopping: keeping epoch {run.state.best_epoch} "
                    f"validation:accuracy={run.state.best_score:.4f}")
        return run.predictor(run.state.best_weights)
    return run.predictor(_mean(run.state.recent_weights))


def _setup(train_set: list[Example], validation: list[Example] | None, params: dict,
           context: TrainingContext) -> _Run:
    """The network, optimizer and encoded data, resumed from a checkpoint when there is one of this job."""
    log = context.log
    chainer.config.use_cudnn = "never"
    limit_math_threads(context.threads)
    labels = sorted({e.label for e in train_set})
    cleaned = [clean_text(e.text) for e in train_set]
    data_fingerprint = fingerprint(train_set, validation, params)
    checkpoint = checkpoint_path(context)
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

    state = TrainingState()
    resumed = None if checkpoint is None else load_checkpoint(checkpoint, network, optimizer, data_fingerprint, log)
    if resumed is not None:
        state, vocabulary = resumed
        log(f"resumed from checkpoint {checkpoint}: epoch {state.epoch} complete, "
            f"{state.batch} minibatches of epoch {state.epoch + 1} done")
    elif params["pretrain_epochs"]:
        _pretrain_embeddings(network.encoder.embed.W.array, vocabulary, cleaned, params, context)
    index = {word: i for i, word in enumerate(vocabulary)}
    sequences = [encode(text, index, params["max_len"]) for text in cleaned]
    lengths = np.array([len(s) for s in sequences])
    label_ids = {label: i for i, label in enumerate(labels)}
    targets = np.array([label_ids[e.label] for e in train_set], np.int32)
    if params["early_stopping"] and not validation:
        log("early_stopping: no validation channel, training all epochs")
    log(f"lstm: {len(train_set)} texts, vocabulary {len(vocabulary)} words, labels {labels}, "
        f"mean length {lengths.mean():.1f} tokens, {context.threads} threads")
    return _Run(params, context, network, optimizer, state, vocabulary, labels, dims, sequences, lengths, targets,
                params["early_stopping"] and bool(validation), checkpoint, data_fingerprint)


def _train_epoch(run: _Run) -> None:
    """The minibatches of the epoch in progress from where it stands; on a stop request, checkpoint
    and raise TrainingInterrupted."""
    params, state, network = run.params, run.state, run.network
    epoch = state.epoch + 1
    batches = minibatches(run.lengths, params["batch_size"], params["bucket_batches"], params["seed"], epoch)
    if state.batch == 0:
        np.random.seed([params["seed"], epoch, 1])  # dropout of this epoch
    started, seen = time.monotonic(), 0
    with chainer.using_config("train", True), chainer.using_config("type_check", False):
        for number in range(state.batch, len(batches)):
            if run.context.stop_requested():
                run.save(f"stop requested in epoch {epoch}, after minibatch {number}/{len(batches)}")
                resumes = "the checkpoint resumes from there" if run.checkpoint else "no checkpoint dir: not saved"
                raise TrainingInterrupted(f"stopped in epoch {epoch} after minibatch {number}; {resumes}")
            batch = batches[number]
            logits = network(*pad([run.sequences[i] for i in batch]))
            loss = F.softmax_cross_entropy(logits, run.targets[batch])
            network.cleargrads()
            loss.backward()
            run.optimizer.update()
            state.loss_sum += float(loss.array) * len(batch)
            state.loss_count += len(batch)
            state.correct += int((logits.array.argmax(axis=1) == run.targets[batch]).sum())
            state.batch = number + 1
            seen += len(batch)
    seconds = time.monotonic() - started
    run.context.log(f"epoch {epoch}/{params['epochs']}: train:loss={state.loss_sum / state.loss_count:.4f} "
                    f"train:accuracy={state.correct / state.loss_count:.4f} "
                    f"tweets/s={seen / max(seconds, 1e-9):.0f} seconds={seconds:.1f}")


def _end_epoch(run: _Run, validation: list[Example] | None) -> None:
    """Close the epoch: average the last epochs' weights, score that on `validation`, decide whether
    early stopping ends the job, checkpoint."""
    state, log = run.state, run.context.log
    epoch = state.epoch + 1
    state.epoch, state.batch, state.loss_sum, state.loss_count, state.correct = epoch, 0, 0.0, 0, 0
    state.recent_weights = [*state.recent_weights, network_weights(run.network)][-run.params["average_epochs"]:]
    if validation:
        averaged = _mean(state.recent_weights)
        accuracy = _accuracy(run.predictor(averaged), validation)
        log(f"epoch {epoch}/{run.params['epochs']}: validation:accuracy={accuracy:.4f}")
        if accuracy > state.best_score:
            state.best_score, state.best_epoch, state.since_best = accuracy, epoch, 0
            state.best_weights = averaged if run.stopping else None
        else:
            state.since_best += 1
            if run.stopping and state.since_best >= run.params["patience"]:
                log(f"early stopping: no improvement for {state.since_best} epochs")
                state.finished = True
    run.save(f"epoch {epoch} complete")


def _mean(weights: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The mean of several sets of the network's weights, array by array."""
    return {name: np.mean([w[name] for w in weights], axis=0, dtype=np.float32) for name in weights[0]}


def _accuracy(model: LSTMPredictor, examples: Sequence[Example]) -> float:
    predicted = model.predict([e.text for e in examples], k=1)
    return sum(p.labels[0] == e.label for p, e in zip(predicted, examples)) / len(examples)


def _pretrain_embeddings(table: np.ndarray, vocabulary: list[str], cleaned: list[str], params: dict,
                         context: TrainingContext) -> None:
    """Fill the (V, E) embedding `table` (except padding) with fastText skipgram vectors learned from the
    cleaned training texts, scaled to the random init's spread. One fastText thread: reproducible."""
    import fasttext  # only this option needs it

    from model.fasttext_model import zeroed_allocations

    started = time.monotonic()
    corpus = context.work_dir / "lstm-pretrain.txt"
    corpus.write_text("".join(text + "\n" for text in cleaned), encoding="utf-8")
    with zeroed_allocations():
        vectors = fasttext.train_unsupervised(str(corpus), model="skipgram", dim=table.shape[1],
                                              epoch=params["pretrain_epochs"], minCount=params["min_count"],
                                              thread=1, verbose=0)
    corpus.unlink()
    learned = np.stack([vectors.get_word_vector(word) for word in vocabulary[UNK + 1:]]).astype(np.float32)
    table[UNK + 1:] = learned * (table[UNK + 1:].std() / max(float(learned.std()), 1e-6))
    context.log(f"pretrained {len(learned)} word vectors with fastText in {time.monotonic() - started:.1f} s")
