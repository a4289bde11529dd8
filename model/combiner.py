"""The trained model and VADER's lexicon, combined by weights fitted on the validation channel.

    combined = fit(model, validation_examples)     # at training time
    combined.predict(["not bad at all"], k=2)      # what serving calls

A multinomial logistic regression ("stacking") over the trained model's log-probabilities
and VADER's four scores (`model.lexicon`), fitted on held-out validation messages, so each
source counts as much as it earns there and the probabilities come out calibrated. Its
weights are recorded in the manifest (`combiner`); the algorithm's own files stay as they
are (a BlazingText `model.bin` is still a plain fastText model).

A "neutral" label, when the training data has one, is fitted like the others but never
answered: its probability is what the positive and negative ones leave below 1, so a
message with no clear feeling gets a low confidence and is marked unrecognized. A message
with no word the model knows and none in the lexicon (an empty one, "asdf") gets
probability 0 for every label: there is nothing to decide on.

An ensemble with the sentence encoder's member (model/encoder_member.py, ~2,500 tokens a second)
is also fitted without it: serving answers a request too long to encode in its time with that
combination instead (`for_request`), so no request outlasts SageMaker's timeout.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from model import encoder_member, lexicon
from model.artifact import SERVE_OR_RETRAIN
from model.datasets import Example
from model.logistic import fold_standardisation, logistic_regression, softmax, standardisation
from model.predictor import Prediction, Predictor, TrainedPredictor, top_k

NEUTRAL = "neutral"
REFERENCE_SHARE = 1 / 3
_LOG_FLOOR = 1e-4  # log-probabilities below log(1e-4) say nothing more


@dataclass(frozen=True)
class Combiner:
    """Fitted weights. inputs: the trained model's labels, whose log-probabilities are the first
    features; classes: the regression's outputs (those labels, plus neutral when validation had
    it); mean, scale: per-feature standardization; weights: (features + 1, classes), the last
    row the bias; lexicon: which lexicon made the last features; members: the models of an
    ensemble beside the trained one, whose log-probabilities follow its own, each recorded as
    its name, algorithm and the manifest fields its files need (`{"name": "lstm", "algorithm":
    "lstm", ...}`); fallback: the same fitted without the sentence encoder's member, when it has one."""

    inputs: list[str]
    classes: list[str]
    mean: list[float]
    scale: list[float]
    weights: list[list[float]]
    lexicon: str = lexicon.NAME
    members: list[dict] = field(default_factory=list)
    fallback: Combiner | None = None


class CombinedPredictor:
    """A trained predictor (and the members of its ensemble, if any) with its Combiner; answers
    the Predictor interface with the combined probabilities of every label but neutral."""

    def __init__(self, base: TrainedPredictor, combiner: Combiner, manifest: dict,
                 members: Sequence[TrainedPredictor] = ()):
        if combiner.inputs != list(base.labels):
            raise ValueError(f"the combiner was fitted for labels {combiner.inputs}, the model has {base.labels}")
        self.base = base
        self.members = list(members)
        self._models = [base, *self.members]  # each one's log-probabilities are inputs, in this order
        self.combiner = combiner
        self.manifest = manifest
        answered = [label for label in combiner.classes if label != NEUTRAL]
        self.labels = answered if len(answered) >= 2 else list(combiner.classes)
        self._columns = [combiner.classes.index(label) for label in self.labels]
        self._known = frozenset(base.vocabulary)
        lexicon.analyzer()  # loaded with the model (before gunicorn forks), not by the first request
        weights = np.asarray(combiner.weights)
        folded, self._bias = fold_standardisation(weights[:-1], weights[-1], np.asarray(combiner.mean),
                                                  np.asarray(combiner.scale))
        ends = np.cumsum([len(model.labels) for model in self._models])
        if len(folded) != ends[-1] + len(lexicon.FEATURES):
            raise ValueError(f"the combiner has {len(folded)} weight rows; its models and the lexicon "
                             f"give {ends[-1] + len(lexicon.FEATURES)} inputs")
        self._model_weights = np.split(folded[:ends[-1]], ends[:-1])
        self._lexicon_weights = folded[ends[-1]:]
        self.fallback: CombinedPredictor | None = None
        self.costly: list[TrainedPredictor] = []  # the members the fallback goes without
        if combiner.fallback is not None:
            kept = {record["name"] for record in combiner.fallback.members}
            named = list(zip(combiner.members, self.members))
            self.fallback = CombinedPredictor(base, combiner.fallback, manifest,
                                              [member for record, member in named if record["name"] in kept])
            self.costly = [member for record, member in named if record["name"] not in kept]

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), labels) combined probabilities of the answered labels (their rows sum to
        at most 1: the rest is neutral); all 0 for a text with nothing to go on."""
        lexicon_rows = lexicon.features(texts, self.combiner.lexicon)
        scores = lexicon_rows @ self._lexicon_weights + self._bias
        # Each text cleaned once per cleaning function (one, for the models of one job), not per model.
        cleaned: dict[Callable[[str], str], list[str]] = {}
        for model, weights in zip(self._models, self._model_weights):
            if model.preprocess not in cleaned:
                cleaned[model.preprocess] = [model.preprocess(text) for text in texts]
            scores += _log_probs(model.cleaned_probabilities(cleaned[model.preprocess])) @ weights
        probs = softmax(scores)[:, self._columns]
        base_cleaned = cleaned[self.base.preprocess]
        for row in np.flatnonzero(lexicon.no_feeling(lexicon_rows)):
            if not any(token in self._known for token in base_cleaned[row].split()):
                probs[row] = 0.0
        return probs

    def predict(self, texts: Sequence[str], k: int = 1) -> list[Prediction]:
        return top_k(self.probabilities(texts), self.labels, k)

    @property
    def preprocess(self) -> Callable[[str], str]:
        return self.base.preprocess

    def save(self, model_dir: Path) -> dict:
        """The trained model's files and fields, and each member's files beside them (their
        names must not clash: fastText's model.bin, the LSTM's lstm.npz and vocab.json, a fastText
        member's own file name, see model/job.py)."""
        records = [{**record, "labels": list(member.labels), "preprocessing": member.manifest["preprocessing"],
                    **member.save(model_dir)} for record, member in zip(self.combiner.members, self.members)]
        return {**self.base.save(model_dir), "combiner": asdict(replace(self.combiner, members=records))}

    @property
    def vocabulary(self) -> Sequence[str]:
        return self.base.vocabulary


def from_manifest(base: TrainedPredictor, manifest: dict, model_dir: Path) -> Predictor:
    """`base` combined as its manifest records (with the members of its ensemble, loaded from
    `model_dir`), or `base` itself when it records no combiner."""
    fields = manifest.get("combiner")
    if not fields:
        return base
    if fields.get("lexicon") not in lexicon.NAMES:
        raise ValueError(f"the model was combined with lexicon {fields.get('lexicon')!r}; this server has "
                         f"{', '.join(map(repr, lexicon.NAMES))}: {SERVE_OR_RETRAIN}")
    from model.predictor import member_algorithm  # the members' modules, loaded lazily as the base's are

    members = [member_algorithm(record["algorithm"]).load(model_dir, record) for record in fields.get("members", [])]
    fallback = Combiner(**fields["fallback"]) if fields.get("fallback") else None
    return CombinedPredictor(base, Combiner(**{**fields, "fallback": fallback}), manifest, members)


def for_request(model: Predictor, texts: Sequence[str], seconds: float) -> Predictor:
    """What serving answers `texts` with when the sentence encoder may take `seconds` of the request:
    `model`, or its fallback (the ensemble without the encoder) when the encoder would take longer."""
    if isinstance(model, CombinedPredictor) and model.fallback is not None \
            and not all(member.affordable(texts, seconds) for member in model.costly):
        return model.fallback
    return model


def fit(base: TrainedPredictor, validation: Sequence[Example], reference: Sequence[Example] = (),
        log: Callable[[str], None] = print, members: dict[str, TrainedPredictor] | None = None) -> CombinedPredictor:
    """Fit the combination on `validation` (messages the model was not trained on): rows of the
    model's labels, and neutral ones, which teach it what no clear feeling looks like.
    `members` (name -> model trained beside it, e.g. on the same data) join as an ensemble.
    `reference` messages (the product's own check-ins) count for a third of the fit, however
    few they are: validation drawn from tweets alone would teach the weights nothing of check-ins."""
    if not {e.label for e in reference} - {NEUTRAL} <= set(base.labels):
        reference = ()  # ours are positive/negative/neutral: of no use to a model of other labels ("0", "1")
    everything = [*validation, *reference]
    has_neutral = NEUTRAL not in base.labels and any(e.label == NEUTRAL for e in everything)
    classes = list(base.labels) + ([NEUTRAL] if has_neutral else [])
    references = [e for e in reference if e.label in classes]
    # References in the validation channel too (the sample job's is the references themselves, and
    # bench/compare.py adds them for the threshold) still count a third, and once.
    counted = set(references)
    validation_rows = [e for e in validation if e.label in classes and e not in counted]
    rows = validation_rows + references
    share = REFERENCE_SHARE if validation_rows and references else float(bool(references))
    # Weights with mean 1: the validation rows carry 1 - share of the total, the references share.
    row_weights = len(rows) * np.concatenate([np.full(len(validation_rows), (1 - share) / max(len(validation_rows), 1)),
                                              np.full(len(references), share / max(len(references), 1))])
    present = {e.label for e in rows}
    if len(present) < 2:
        raise ValueError(f"the validation messages hold {len(present)} of the model's labels {classes}: "
                         "the lexicon combination needs at least two")
    texts = [e.text for e in rows]
    members = members or {}
    models = [base, *members.values()]
    inputs = _inputs([model.probabilities(texts) for model in models], lexicon.features(texts))
    mean, scale = standardisation(inputs)
    targets = np.array([classes.index(e.label) for e in rows])
    # A few dozen validation messages are easily separable; the penalty keeps their weights,
    # and so the confidences, from running to infinity (C=1 in scikit-learn's terms).
    weights = logistic_regression((inputs - mean) / scale, targets, row_weights, len(classes), l2=1 / len(rows))
    costly = [name for name, model in members.items() if model.manifest["algorithm"] == encoder_member.ALGORITHM]
    fallback = fit(base, validation, reference, lambda line: log(f"without {', '.join(costly)}: {line}"),
                   {name: model for name, model in members.items() if name not in costly}) if costly else None
    log(f"lexicon combination fitted on {len(validation_rows)} validation and {len(references)} reference "
        f"messages: weights for {classes[0]} "
        + " ".join(f"{name}={w:+.2f}" for name, w in zip(_input_names(base, members), weights[:-1, 0])))
    combiner = Combiner(list(base.labels), classes, mean.tolist(), scale.tolist(), weights.tolist(),
                        members=[{"name": name, "algorithm": model.manifest["algorithm"]}
                                 for name, model in members.items()],
                        fallback=fallback.combiner if fallback else None)
    return CombinedPredictor(base, combiner, base.manifest, list(members.values()))


def _inputs(models_probs: list[np.ndarray], lexicon_rows: np.ndarray) -> np.ndarray:
    return np.hstack([*map(_log_probs, models_probs), lexicon_rows])


def _log_probs(base_probs: np.ndarray) -> np.ndarray:
    return np.log(np.maximum(base_probs, _LOG_FLOOR))  # probabilities are at most 1 (the Predictor's contract)


def _input_names(base: TrainedPredictor, members: dict[str, TrainedPredictor]) -> list[str]:
    return ([f"log_p_{label}" for label in base.labels]
            + [f"{name}:log_p_{label}" for name, member in members.items() for label in member.labels]
            + list(lexicon.FEATURES))

