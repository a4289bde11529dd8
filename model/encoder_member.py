"""The ensemble's sentence-encoder member: small networks on all-mpnet-base-v2's sentence vectors
(model/encoder.py; all-MiniLM-L6-v2's in models trained before), trained on the messages a person
labelled, their probabilities averaged.

Why: our tweets teach little of what words and events mean beyond them; a model pretrained on a
billion sentence pairs knows. Out-of-sample validation accuracy of the default job's combination
0.8436-0.8455 -> 0.8575-0.8585 with a logistic regression on the vectors, 0.8627-0.8647 with one
hidden layer between, and with three such networks averaged 0.8643-0.8673 (mean 0.8662, four draws)
against 0.8585-0.8660 (mean 0.8629, twelve seeds) for one: a network's seed and early-stopping split
alone moved it that much (docs/model.md). On all-mpnet-base-v2's vectors instead of all-MiniLM-L6-v2's,
0.8624-0.8653 -> 0.8916-0.8945 (three draws each). Trained on the hand-labelled rows only: the encoder's
cost a text makes Sentiment140's hundred thousand too dear, and they gave less (0.8526 with 40,000
of them beside, 0.8436 with those alone, on all-MiniLM-L6-v2's).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import chainer
import chainer.functions as F
import chainer.links as L
import numpy as np

from model import encoder
from model.artifact import SERVE_OR_RETRAIN
from model.context import TrainingContext
from model.datasets import Example
from model.logistic import fold_standardisation, softmax, standardisation
from model.predictor import Prediction, top_k
from model.preprocessing import ENCODER_NAME, ENCODER_VERSION, preprocessor

ALGORITHM = "encoder"
HEAD_FILE = "encoder-head.npz"
PREPROCESSING = {"name": ENCODER_NAME, "version": ENCODER_VERSION}  # model/preprocessing.py's for_encoder
# The head's training, as the experiment that chose it (scikit-learn's MLPClassifier((512,), alpha=1.0,
# early_stopping=True)): Adam at 0.001 on minibatches of 200, an L2 penalty of 1/200, and the epoch best
# on a tenth of the texts held out (all the rows of each), once 10 more have not bettered it.
HIDDEN_UNITS = 512
BATCH_SIZE = 200
WEIGHT_DECAY = 1 / BATCH_SIZE
HELD_OUT_SHARE = 0.1
PATIENCE = 10
MAX_EPOCHS = 200
# Sentence vectors kept by text (30 MB of all-mpnet-base-v2's): a training job asks for validation's twice
# (the combination's fit, then the evaluation), two minutes of the encoder's time; serving, the commonest messages.
CACHED_TEXTS = 10_000
HEADS = 3  # networks averaged, seeds 0, 1, 2: five were no better on validation than three
_HEAD_ARRAY = re.compile(r"(?:(?P<number>\d+)/)?(?P<array>(?:hidden|output)/[Wb])")  # a saved Head's arrays


class Head(chainer.Chain):
    """Standardised sentence vectors (batch, dim) -> scores (batch, n_labels), through one layer of
    `hidden` ReLU units."""

    def __init__(self, dim: int, n_labels: int, hidden: int = HIDDEN_UNITS):
        super().__init__()
        with self.init_scope():
            self.hidden = L.Linear(dim, hidden)
            self.output = L.Linear(hidden, n_labels)

    def forward(self, vectors: np.ndarray) -> chainer.Variable:
        return self.output(F.relu(self.hidden(vectors)))


class EncoderMemberPredictor:
    """labels: the classes; mean, scale: (dim,) standardisation of the sentence vectors; heads: each Head's
    arrays by name (hidden/W (hidden, dim), hidden/b, output/W (labels, hidden), output/b), whose
    probabilities are averaged; preprocessing: the cleaning its texts were given in training;
    encoder_name: the encoder of its vectors (model/encoder.py's ENCODERS)."""

    def __init__(self, labels: Sequence[str], mean: np.ndarray, scale: np.ndarray,
                 heads: Sequence[dict[str, np.ndarray]], preprocessing: dict = PREPROCESSING,
                 encoder_name: str = encoder.DEFAULT):
        self.labels = list(labels)
        self.mean, self.scale, self.heads = mean, scale, list(heads)
        self._layers = [(*fold_standardisation(head["hidden/W"].T, head["hidden/b"], mean, scale),
                         head["output/W"].T, head["output/b"]) for head in self.heads]
        self.encoder_name = encoder_name
        self.manifest = {"algorithm": ALGORITHM, "preprocessing": preprocessing, "encoder": encoder_name}
        self._vectors: dict[str, np.ndarray] = {}  # by cleaned text, up to CACHED_TEXTS
        self.preprocess = preprocessor(preprocessing)
        self.vocabulary: Sequence[str] = ()  # no words of its own: the base model's decide "nothing to go on"

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        return self.cleaned_probabilities([self.preprocess(text) for text in texts])

    def cleaned_probabilities(self, cleaned: Sequence[str]) -> np.ndarray:
        if not cleaned:
            return np.zeros((0, len(self.labels)))
        unique, known = list(dict.fromkeys(cleaned)), self._vectors  # a dict only ever grows, or is replaced
        found = {text: known[text] for text in unique if text in known}
        missing = [text for text in unique if text not in found]
        if missing:
            found.update(zip(missing, encoder.encoder(self.encoder_name).embed(missing)))
            if len(self._vectors) + len(missing) > CACHED_TEXTS:
                self._vectors = {}  # replaced, not cleared: a request reading it meanwhile keeps the old one
            if len(missing) <= CACHED_TEXTS:
                self._vectors.update((text, found[text]) for text in missing)
        return self.vector_probabilities(np.stack([found[text] for text in cleaned]))

    def vector_probabilities(self, vectors: np.ndarray) -> np.ndarray:
        """(n, labels) probabilities of (n, dim) sentence vectors already computed."""
        return np.mean([softmax(np.maximum(vectors @ hidden + hidden_bias, 0.0) @ output + output_bias)
                        for hidden, hidden_bias, output, output_bias in self._layers], axis=0)

    def predict(self, texts: Sequence[str], k: int = 1) -> list[Prediction]:
        return top_k(self.probabilities(texts), self.labels, k)

    def affordable(self, texts: Sequence[str], seconds: float) -> bool:
        """Whether the encoder would take `texts` in `seconds` or less (its tokens_per_second, a little below
        what bench/encoder_speed.py measures on one thread: a serving worker's math runs on one, and the
        ensemble's other models take their share too); only a request long enough to need it is tokenized
        to count (30,000 tweets: 1 s)."""
        budget = seconds * encoder.ENCODERS[self.encoder_name].tokens_per_second
        if len(texts) * encoder.MAX_TOKENS <= budget:
            return True
        return encoder.encoder(self.encoder_name).count_tokens([self.preprocess(text) for text in texts]) <= budget

    def save(self, model_dir: Path) -> dict:
        arrays = {f"{number}/{name}": array for number, head in enumerate(self.heads) for name, array in head.items()}
        with open(model_dir / HEAD_FILE, "wb") as file:
            np.savez(file, labels=np.array(self.labels), mean=self.mean, scale=self.scale, **arrays)
        return {"head_file": HEAD_FILE, "encoder": self.encoder_name}


def train(examples: list[Example], context: TrainingContext) -> EncoderMemberPredictor:
    """Fit HEADS Heads on the standardised sentence vectors of `examples`."""
    context.log(f"ensemble: {encoder.DEFAULT} sentence vectors of {len(examples)} messages")
    member, epochs = fit(*encoded_rows(examples))
    context.log(f"ensemble: {encoder.DEFAULT} heads kept from epochs {', '.join(map(str, epochs))}")
    return member


def encoded_rows(examples: list[Example], encoder_name: str = encoder.DEFAULT
                 ) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """(labels, (rows, dim) sentence vectors, label index of each row, text number of each row) of
    `examples`, each text encoded once (our accounts are trained on 3 times)."""
    labels = sorted({e.label for e in examples})
    clean = preprocessor(PREPROCESSING)
    texts = [clean(e.text) for e in examples]
    unique = list(dict.fromkeys(texts))
    row = {text: i for i, text in enumerate(unique)}
    text_of_row = np.array([row[text] for text in texts])
    targets = np.array([labels.index(e.label) for e in examples], dtype=np.int32)
    return labels, encoder.encoder(encoder_name).embed(unique)[text_of_row], targets, text_of_row


def fit(labels: list[str], vectors: np.ndarray, targets: np.ndarray, text_of_row: np.ndarray,
        first_seed: int = 0, encoder_name: str = encoder.DEFAULT) -> tuple[EncoderMemberPredictor, list[int]]:
    """The member with HEADS Heads fitted on `encoded_rows`' output (`fit_head`) for `encoder_name`'s
    vectors, with seeds `first_seed`, `first_seed` + 1, ..., and their epochs."""
    mean, scale = standardisation(vectors)
    inputs = ((vectors - mean) / scale).astype(np.float32)
    heads, epochs = zip(*(fit_head(inputs, targets, len(labels), text_of_row, seed)
                          for seed in range(first_seed, first_seed + HEADS)))
    return EncoderMemberPredictor(labels, mean, scale, heads, encoder_name=encoder_name), list(epochs)


def fit_head(inputs: np.ndarray, targets: np.ndarray, n_labels: int, text_of_row: np.ndarray,
             seed: int = 0) -> tuple[dict[str, np.ndarray], int]:
    """The Head's weights at the epoch most accurate on a held-out tenth of the texts (`held_out_rows`),
    and that epoch."""
    rng = np.random.RandomState(seed)
    held_out, kept = held_out_rows(text_of_row, rng)
    np.random.seed(seed)  # Chainer's initialisers draw from NumPy's global RNG
    head = Head(inputs.shape[1], n_labels)
    optimizer = chainer.optimizers.Adam(alpha=0.001)
    optimizer.setup(head)
    optimizer.add_hook(chainer.optimizer_hooks.WeightDecay(WEIGHT_DECAY))
    best, best_epoch, weights = -1.0, 0, {}
    for epoch in range(1, MAX_EPOCHS + 1):
        shuffled = kept[rng.permutation(len(kept))]
        for start in range(0, len(shuffled), BATCH_SIZE):
            batch = shuffled[start:start + BATCH_SIZE]
            loss = F.softmax_cross_entropy(head(inputs[batch]), targets[batch])
            head.cleargrads()
            loss.backward()
            optimizer.update()
        with chainer.no_backprop_mode():
            accuracy = float((head(inputs[held_out]).array.argmax(axis=1) == targets[held_out]).mean())
        if accuracy > best:
            best, best_epoch = accuracy, epoch
            weights = {name.lstrip("/"): param.array.copy() for name, param in head.namedparams()}
        if epoch - best_epoch >= PATIENCE:
            break
    return weights, best_epoch


def held_out_rows(text_of_row: np.ndarray, rng: np.random.RandomState) -> tuple[np.ndarray, np.ndarray]:
    """(held out, kept) row indices: the rows of a random HELD_OUT_SHARE of the texts (one at least: a
    channel may repeat a few texts a thousand times), and the others. `text_of_row[i]` numbers row i's
    text: the rows of one text (our accounts, trained on three times) are held out together, so that no
    epoch is chosen for knowing a held-out row by heart."""
    shuffled_texts = rng.permutation(text_of_row.max() + 1)
    held_out = np.isin(text_of_row, shuffled_texts[:max(1, int(len(shuffled_texts) * HELD_OUT_SHARE))])
    return np.flatnonzero(held_out), np.flatnonzero(~held_out)


def load(model_dir: Path, record: dict) -> EncoderMemberPredictor:
    """The member of `record`, with the encoder loaded now: a server without its weights refuses the model
    at start (FileNotFoundError, saying what to install), not at the first request."""
    name = record.get("encoder")
    if name not in encoder.ENCODERS:
        raise ValueError(f"the model's ensemble has a head on {name!r} sentence vectors; this server has "
                         f"{' and '.join(encoder.ENCODERS)} and no other: {SERVE_OR_RETRAIN} (or retrain with "
                         "-p encoder=false)")
    encoder.encoder(name)
    with np.load(model_dir / record["head_file"], allow_pickle=False) as saved:
        heads: dict[int, dict[str, np.ndarray]] = {}
        for array in saved.files:  # "0/hidden/W", "1/hidden/W", ...; an earlier image's one network "hidden/W"
            if match := _HEAD_ARRAY.fullmatch(array):
                heads.setdefault(int(match["number"] or 0), {})[match["array"]] = saved[array]
        if not heads:
            raise ValueError(f"{record['head_file']} holds a regression on the sentence vectors, the head of an "
                             f"earlier image: {SERVE_OR_RETRAIN}")
        return EncoderMemberPredictor([str(label) for label in saved["labels"]], saved["mean"], saved["scale"],
                                      [heads[number] for number in sorted(heads)], record["preprocessing"], name)
