"""fastText supervised classification, compatible with SageMaker's BlazingText.

Same hyperparameter names and defaults as BlazingText's supervised mode (but the
learning rate, scaled to the data unless given), and the same artifact: a `model.bin`
that fastText (CLI or Python) loads, and that we load from BlazingText. Our extras:
subword character n-grams, quantization (on by default: BlazingText's 2M hash buckets
make an ~800 MB model.bin, the quantized one is a few MB), and a seed.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import platform
import random
import re
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import fasttext
import numpy as np

from model.context import TrainingContext, TrainingInterrupted
from model.datasets import LABEL_PREFIX, Example, write_blazingtext
from model.fasttext_format import check_model_file
from model.hyperparameters import Param, Spec
from model.predictor import BLAZINGTEXT_MODEL_FILE, Prediction, top_k
from model.preprocessing import PREPROCESSING, clean_text, preprocessor

SPEC = Spec(
    Param("mode", str, "supervised", "BlazingText mode; only supervised classification here",
          choices=("supervised",)),
    Param("epochs", int, 5, "passes over the training data", 1, 1000),
    Param("learning_rate", float, None, "initial learning rate, decays linearly to 0; unset: BlazingText's "
          "0.05 from 500,000 row-passes (rows × epochs) up, raised in proportion below that, to at most 0.5",
          1e-6, 10),
    Param("min_count", int, 5, "words seen fewer times are dropped", 1, 1_000_000),
    Param("vector_dim", int, 100, "size of word vectors", 2, 1000),
    Param("word_ngrams", int, 2, "word n-gram length used as features", 1, 5),
    Param("buckets", int, 2_000_000, "hash buckets for word (and char) n-grams", 1000, 100_000_000),
    Param("early_stopping", bool, False, "pick the epoch count by validation accuracy (needs validation)"),
    Param("patience", int, 4, "early stopping: epoch counts tried without improvement before stopping", 1, 100),
    Param("min_epochs", int, 5, "early stopping: the smallest epoch count tried", 1, 1000),
    Param("subwords", bool, False, "ours: also learn character n-grams (helps with misspellings)"),
    Param("min_char", int, 3, "ours: shortest character n-gram when subwords", 1, 10),
    Param("max_char", int, 6, "ours: longest character n-gram when subwords", 1, 10),
    Param("quantize", bool, True, "ours: product-quantize the model (few MB instead of ~800 MB)"),
    Param("quantize_cutoff", int, 100_000, "ours: words and n-grams kept when quantizing (0: all)",
          0, 100_000_000),
    Param("seed", int, 0, "ours: random seed (fully reproducible only with one thread)", 0, 2**31 - 1),
)

# BlazingText's learning rate suits large corpora. fastText decays the rate linearly to 0 over
# its row-passes, so on little data a run ends far from a good model: 20,000 tweets × 3 epochs
# scored 0.71 on held-out tweets at 0.05, 0.78 at 0.2 to 0.5. Measured on held-out tweets, the
# best rate fell as rows × epochs rose (0.5 at 13,500 and 22,500; 0.2 at 54,000 to 135,000; 0.1
# at 225,000 to 297,000; 0.05 at 495,000): unless given, it is scaled to keep rate × passes.
BLAZINGTEXT_LEARNING_RATE = 0.05
FULL_PASSES = 500_000
MAX_SCALED_LEARNING_RATE = 0.5
_M_PERTURB = -6  # glibc's malloc.h

_PROGRESS = re.compile(rb"Progress:\s*([\d.]+)%.*?words/sec/thread:\s*(\d+).*?lr:\s*(-?[\d.]+).*?avg\.loss:\s*([\d.]+)")


class FastTextPredictor:
    """A fastText model and the cleaning its training text went through."""

    def __init__(self, model: fasttext.FastText._FastText, preprocess: Callable[[str], str], manifest: dict,
                 model_file: str = BLAZINGTEXT_MODEL_FILE):
        self.model = model
        self.preprocess = preprocess
        self.manifest = manifest
        self.model_file = model_file  # another name when it is an ensemble's member beside model.bin
        self.labels = sorted(label.removeprefix(LABEL_PREFIX) for label in model.get_labels())
        self.vocabulary = model.get_words()
        self._column = {LABEL_PREFIX + label: i for i, label in enumerate(self.labels)}

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), labels) probabilities, columns in `self.labels` order."""
        return self.cleaned_probabilities([self.preprocess(text) for text in texts])

    def cleaned_probabilities(self, cleaned: Sequence[str]) -> np.ndarray:
        labels, probs = self.model.predict(list(cleaned), k=-1)
        # fastText answers each text's labels most probable first: put them back in column order.
        columns = [[self._column[label] for label in row_labels] for row_labels in labels]
        matrix = np.zeros((len(cleaned), len(self.labels)))
        np.put_along_axis(matrix, np.array(columns).reshape(len(cleaned), -1),
                          np.array(probs).reshape(len(cleaned), -1), axis=1)
        return np.minimum(matrix, 1.0)  # fastText's softmax can come out a hair above 1.0

    def predict(self, texts: Sequence[str], k: int = 1) -> list[Prediction]:
        return top_k(self.probabilities(texts), self.labels, k)

    def save(self, model_dir: Path) -> dict:
        self.model.save_model(str(model_dir / self.model_file))
        return {"model_file": self.model_file}

    def saved_as(self, model_file: str) -> FastTextPredictor:
        """The same model, saved under another file name."""
        return FastTextPredictor(self.model, self.preprocess, self.manifest, model_file)


def load(model_dir: Path, manifest: dict | None) -> FastTextPredictor:
    """Our artifact (with manifest) or BlazingText's bare model.bin, whose text was tokenized by its user."""
    if manifest is None:
        manifest = {"algorithm": "blazingtext", "preprocessing": {"name": "none", "version": 1}}
    model_file = manifest.get("model_file", BLAZINGTEXT_MODEL_FILE)
    check_model_file(model_dir / model_file)  # fastText's loader trusts the file: a damaged one can hang it
    model = fasttext.load_model(str(model_dir / model_file))
    return FastTextPredictor(model, preprocessor(manifest["preprocessing"]), manifest, model_file)


def train(train_set: list[Example], validation: list[Example] | None, params: dict,
          context: TrainingContext) -> FastTextPredictor:
    """Train on `train_set`; with early_stopping, choose the epoch count on `validation`."""
    train_file = context.work_dir / "fasttext-train.txt"
    # fastText reads the file in order and never shuffles: label-sorted input (Sentiment140
    # is all negatives, then all positives) gave models of 0.60-0.75 dev accuracy by seed.
    params = {**params, "learning_rate": learning_rate(params, len(train_set))}
    context.log(f"learning_rate={params['learning_rate']:.4g}")
    shuffled = list(train_set)
    random.Random(params["seed"]).shuffle(shuffled)
    write_blazingtext((Example(clean_text(e.text), e.label) for e in shuffled), train_file)
    model_file = context.work_dir / BLAZINGTEXT_MODEL_FILE
    _run_stoppable(lambda: _fit(train_file, validation, params, context).save_model(str(model_file)), context)
    train_file.unlink()
    model = fasttext.load_model(str(model_file))
    return FastTextPredictor(model, clean_text, {"algorithm": "blazingtext", "preprocessing": PREPROCESSING,
                                                 "hyperparameters": params})


def learning_rate(params: dict, rows: int) -> float:
    """The learning rate given in `params`, or, unset, BlazingText's scaled to `rows` × epochs."""
    if params["learning_rate"] is not None:
        return params["learning_rate"]
    passes = max(1, rows * params["epochs"])
    return min(MAX_SCALED_LEARNING_RATE, BLAZINGTEXT_LEARNING_RATE * max(1.0, FULL_PASSES / passes))


def _fit(train_file: Path, validation: list[Example] | None, params: dict, context: TrainingContext):
    if not params["early_stopping"]:
        model = _train_once(train_file, params, params["epochs"], context)
    else:
        model = _train_early_stopping(train_file, validation, params, context)
    if params["quantize"]:
        context.log(f"quantizing (cutoff={params['quantize_cutoff']})")
        # qout stays off: the output matrix has one row per label, too few to quantize.
        # dsub=4 halves the (single-threaded) k-means time of dsub=2 at the same accuracy.
        with _progress_lines(context.log, model.epoch):
            model.quantize(input=str(train_file), qout=False,
                           cutoff=params["quantize_cutoff"], retrain=params["quantize_cutoff"] > 0,
                           thread=context.threads, verbose=2, qnorm=True, dsub=4)
    return model


def _run_stoppable(work: Callable[[], None], context: TrainingContext) -> None:
    """Run `work` in a forked process, ended at once when the job is asked to stop.

    fastText trains and quantizes in C++ without returning to Python, so a SIGTERM used to
    wait 43-58 s for it (SageMaker kills at 120 s); a child process can be killed instead.
    Its exceptions are raised here; its log lines go to the same stdout.
    """
    fork = multiprocessing.get_context("fork")
    receive, send = fork.Pipe(duplex=False)

    def child() -> None:
        try:
            with zeroed_allocations():
                work()
            send.send(None)
        except Exception as error:
            send.send(error)

    process = fork.Process(target=child, name="fasttext-train", daemon=True)
    process.start()
    send.close()
    try:
        while not receive.poll(0.2):
            if context.stop_requested():
                raise TrainingInterrupted("stopped during fastText training")
            if not process.is_alive() and not receive.poll():
                raise RuntimeError(f"fastText's training process ended with exit code {process.exitcode} "
                                   "(out of memory?)")
        error = receive.recv()
    finally:
        process.kill()
        process.join()
    if error is not None:
        raise error


@contextmanager
def zeroed_allocations() -> Iterator[None]:
    """Within it, glibc's malloc returns zeroed memory; wrap every fastText training in it.

    fastText 0.9.3 allocates its input matrix uninitialised (posix_memalign) and gives random
    values to only `thread`/10 of it (DenseMatrix::uniform fills one tenth per thread). On fresh
    pages the rest is zero; on memory the process used before (a job that read a large channel)
    it is garbage, and training fails with "Encountered NaN." at any learning rate. glibc's
    M_PERTURB fills what malloc returns with the given byte ^ 0xff, so 0xff makes it the zeros
    fastText gets on a fresh heap. Elsewhere (not glibc) this does nothing.
    """
    if platform.libc_ver()[0] != "glibc":
        yield
        return
    mallopt = ctypes.CDLL(None).mallopt
    mallopt(_M_PERTURB, 0xFF)
    try:
        yield
    finally:
        mallopt(_M_PERTURB, 0)


def _train_once(train_file: Path, params: dict, epochs: int, context: TrainingContext):
    subwords = params["subwords"]
    with _progress_lines(context.log, epochs):
        return fasttext.train_supervised(
            input=str(train_file), epoch=epochs, lr=params["learning_rate"], minCount=params["min_count"],
            dim=params["vector_dim"], wordNgrams=params["word_ngrams"], bucket=params["buckets"],
            minn=params["min_char"] if subwords else 0, maxn=params["max_char"] if subwords else 0,
            loss="softmax", thread=context.threads, seed=params["seed"], verbose=2)


def _train_early_stopping(train_file: Path, validation: list[Example] | None, params: dict,
                          context: TrainingContext):
    """fastText's learning rate decays to zero over the epochs it is given, so a model
    trained for e epochs is not a snapshot of a longer run: each epoch count from
    min_epochs up is a run of its own, until `patience` counts bring no improvement."""
    if not validation:
        raise ValueError("early_stopping=true needs a validation channel")
    texts = [clean_text(e.text) for e in validation]
    truth = [e.label for e in validation]
    best_model, best_accuracy, best_epochs, since_best = None, -1.0, 0, 0
    for epochs in range(min(params["min_epochs"], params["epochs"]), params["epochs"] + 1):
        model = _train_once(train_file, params, epochs, context)
        predicted = [labels[0].removeprefix(LABEL_PREFIX) for labels in model.predict(texts)[0]]
        accuracy = sum(p == t for p, t in zip(predicted, truth)) / len(truth)
        context.log(f"early stopping: epochs={epochs} validation:accuracy={accuracy:.4f}")
        if accuracy > best_accuracy:
            best_model, best_accuracy, best_epochs, since_best = model, accuracy, epochs, 0
        else:
            since_best += 1
            if since_best >= params["patience"]:
                break
    context.log(f"early stopping: best epochs={best_epochs} validation:accuracy={best_accuracy:.4f}")
    return best_model


@contextmanager
def _progress_lines(log: Callable[[str], None], epochs: int) -> Iterator[None]:
    """Turn fastText's carriage-return progress bar on stderr into one log line per epoch.

    fastText's C++ code writes to file descriptor 2 while it trains (with the GIL
    released), so the descriptor is pointed at a pipe that a thread reads.
    """
    sys.stderr.flush()
    read_end, write_end = os.pipe()
    saved_stderr = os.dup(2)
    os.dup2(write_end, 2)
    os.close(write_end)

    def pump() -> None:
        next_epoch, buffer = 1, b""
        with os.fdopen(read_end, "rb", buffering=0) as pipe:
            while chunk := pipe.read(4096):
                buffer += chunk
                *records, buffer = re.split(rb"[\r\n]", buffer)
                for record in records:
                    match = _PROGRESS.search(record)
                    if not match:
                        if record.strip():
                            os.write(saved_stderr, record.strip() + b"\n")
                        continue
                    progress, speed, lr, loss = match.groups()
                    # One line per epoch whose end this record reports; on a fast run one record can
                    # pass several epochs' ends, and only the last of them is the one it measured.
                    reached = min(epochs, int(float(progress) * epochs / 100 + 1e-9))
                    if reached >= next_epoch:
                        log(f"epoch {reached}/{epochs}: train:loss={float(loss):.4f} lr={max(0.0, float(lr)):.5f} "
                            f"words/sec/thread={int(speed)}")
                        next_epoch = reached + 1

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved_stderr, 2)  # closes the pipe's last write end: the reader sees EOF
        reader.join(timeout=5)
        os.close(saved_stderr)
