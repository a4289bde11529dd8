"""Training and inference speed of the LSTM: a plain Chainer baseline vs. our default model.

    python bench/lstm_speed.py [--texts 4000] [--epochs 2]

(a) baseline: NStepBiLSTM, embed 128, hidden 128, batch 128, no bucketing or
truncation, final states -> Linear, Adam; (b) `model.lstm` with its default
hyperparameters. Both train on the same texts (a sample of
../shared/data/sentiment140 when present, else the bundled sample) in this one
run; tweets/s per epoch and the ratio are printed, then our model's inference
texts/s, one text per call and 1000 texts per call. Prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import chainer  # noqa: E402
import chainer.functions as F  # noqa: E402
import chainer.links as L  # noqa: E402
import numpy as np  # noqa: E402

from container.sample import SAMPLE  # noqa: E402
from model import lstm  # noqa: E402
from model.context import TrainingContext  # noqa: E402
from model.datasets import Example, filter_labels, read_path  # noqa: E402
from model.lstm.vocabulary import build_vocabulary, encode  # noqa: E402
from model.preprocessing import clean_text  # noqa: E402

SENTIMENT140 = ROOT.parent / "shared/data/sentiment140/training.110k.processed.noemoticon.csv"


def load_texts(count: int) -> tuple[list[Example], str]:
    path = SENTIMENT140 if SENTIMENT140.exists() else SAMPLE
    examples, _ = read_path(path)
    examples, _ = filter_labels(examples, {"positive", "negative"})
    random.Random(0).shuffle(examples)
    return examples[:count], path.name


class Baseline(chainer.Chain):
    """Chainer's examples/text_classification style: EmbedID -> NStepBiLSTM -> final states -> Linear."""

    def __init__(self, n_vocab: int, n_labels: int, embed_dim: int = 128, hidden_dim: int = 128):
        super().__init__()
        with self.init_scope():
            self.embed = L.EmbedID(n_vocab, embed_dim)
            self.rnn = L.NStepBiLSTM(1, embed_dim, hidden_dim, 0.3)
            self.output = L.Linear(2 * hidden_dim, n_labels)

    def forward(self, sequences: list[np.ndarray]) -> chainer.Variable:
        lengths = np.cumsum([len(s) for s in sequences[:-1]])
        embedded = F.split_axis(self.embed(np.concatenate(sequences)), lengths, axis=0)
        last_h, _, _ = self.rnn(None, None, [F.dropout(x, 0.3) for x in embedded])
        return self.output(F.dropout(F.concat([last_h[0], last_h[1]], axis=1), 0.3))


def bench_baseline(examples: list[Example], epochs: int) -> list[float]:
    np.random.seed(0)
    cleaned = [clean_text(e.text) for e in examples]
    vocabulary = build_vocabulary(cleaned, 50_000, 1)
    index = {w: i for i, w in enumerate(vocabulary)}
    sequences = [np.array(encode(t, index, 10_000), np.int32) for t in cleaned]
    labels = sorted({e.label for e in examples})
    targets = np.array([labels.index(e.label) for e in examples], np.int32)
    network = Baseline(len(vocabulary), len(labels))
    optimizer = chainer.optimizers.Adam()
    optimizer.setup(network)
    speeds = []
    for epoch in range(epochs):
        order = np.random.RandomState(epoch).permutation(len(examples))
        started = time.monotonic()
        for start in range(0, len(order), 128):
            batch = order[start:start + 128]
            loss = F.softmax_cross_entropy(network([sequences[i] for i in batch]), targets[batch])
            network.cleargrads()
            loss.backward()
            optimizer.update()
        speeds.append(len(examples) / (time.monotonic() - started))
    return speeds


def bench_ours(examples: list[Example], epochs: int) -> tuple[list[float], lstm.LSTMPredictor]:
    lines: list[str] = []
    params = lstm.SPEC.parse({"epochs": epochs})
    with tempfile.TemporaryDirectory() as work:
        model = lstm.train(examples, None, params, TrainingContext(Path(work), None, 2, lines.append))
    speeds = [float(m.group(1)) for line in lines if (m := re.search(r"tweets/s=(\d+)", line))]
    return speeds, model


def bench_inference(model: lstm.LSTMPredictor, texts: list[str]) -> tuple[float, float]:
    single = texts[:300]
    started = time.monotonic()
    for text in single:
        model.predict([text])
    single_rate = len(single) / (time.monotonic() - started)
    batch = (texts * (1000 // max(1, len(texts)) + 1))[:1000]
    started = time.monotonic()
    for _ in range(3):
        model.predict(batch)
    return single_rate, 3000 / (time.monotonic() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=4000)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    examples, source = load_texts(args.texts)
    print(f"data: {len(examples)} texts from {source}; defaults: {lstm.SPEC.defaults()}")
    baseline = bench_baseline(examples, args.epochs)
    ours, model = bench_ours(examples, args.epochs)
    for epoch, (slow, fast) in enumerate(zip(baseline, ours), 1):
        print(f"epoch {epoch}: baseline {slow:,.0f} tweets/s  ours {fast:,.0f} tweets/s  ratio {fast / slow:.1f}x")
    print(f"best epoch: baseline {max(baseline):,.0f} tweets/s  ours {max(ours):,.0f} tweets/s  "
          f"ratio {max(ours) / max(baseline):.1f}x")
    single, batched = bench_inference(model, [e.text for e in examples])
    print(f"inference: {single:,.0f} texts/s one per call, {batched:,.0f} texts/s 1000 per call")


if __name__ == "__main__":
    main()
