"""VADER's sentiment lexicon (MIT, shipped inside the `vaderSentiment` package) as features.

VADER reads raw text, not our cleaned tokens: it scores capitals, "!!!", emoticons,
emoji (through its emoji lexicon), negation ("not great") and intensifiers itself.
It knows words our training data rarely holds (first-person accounts of feelings,
the closest text to a check-in), so the predictor weighs it against the trained
model (`model.combiner`), and the trained models learn its clearest words as
one-word examples (`training_examples`). It reads "couldn't be better" as a
negation, so it is given the text with the negations of such idioms of degree taken out
(`model.preprocessing.without_degree_negations`), and reads "to be honest" as praise ("honest"
+2.3), so the phrases a message uses to say it is frank are taken out too, and reads "can't stop
crying" as the crying negated, so a negated "stop" or "help" before a verb is taken out
(`model.preprocessing.without_persistence_negations`). A combination fitted before any of these
(lexicon `vader-3.3.2`), or before the second or third (`vader-3.3.2-degree`, `vader-3.3.2-idioms`),
is still served with the text as it read it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from model.datasets import Example
from model.preprocessing import without_degree_negations, without_persistence_negations

PLAIN = "vader-3.3.2"  # VADER as it is: the off-the-shelf analyser we compare with
DEGREE = "vader-3.3.2-degree"  # VADER reading degree idioms right
IDIOMS = "vader-3.3.2-idioms"  # ... and frankness idioms
NAME = "vader-3.3.2-persistence"  # ... and "can't stop crying": what combinations are fitted with now
# How a check-in says it is frank, not what it feels: VADER scored "to be honest I am exhausted" +0.20.
_FRANKNESS = re.compile(r"\b(?:to be (?:totally |completely )?(?:honest|fair|frank)|to tell (?:you )?the truth|"
                        r"truth be told|honestly|tbh)\b", re.IGNORECASE)


def without_idioms(text: str) -> str:
    """Raw `text` without its negated degree idioms, frankness idioms and negations of persistence:
    what VADER reads."""
    return without_persistence_negations(_without_frankness(text))


def _without_frankness(text: str) -> str:
    return _FRANKNESS.sub("", without_degree_negations(text))


_READERS = {NAME: without_idioms, IDIOMS: _without_frankness, DEGREE: without_degree_negations,
            PLAIN: lambda text: text}
NAMES = tuple(_READERS)  # the lexicon readings this server serves
FEATURES = ("vader_compound", "vader_pos", "vader_neg", "vader_neu")
PIECE_WORDS = 40  # far longer than a check-in: those are scored whole, exactly as VADER scores them
CACHED_CHARS = 280  # a tweet's length


# Words of clear feeling: |valence| from 1.5 on VADER's -4..4 scale ("sad" -2.1, "okay" 0.9 is not one),
# 4,025 of its ~7,500 entries; each counts TRAINING_REPEATS times. With them, on emotion tweets the
# job never saw (bench/compare.py --unseen tweeteval), the default job 79.8 -> 80.8 % (VADER 78.9 %);
# fastText alone 74.4 -> 76.8 % (the LSTM alone 76.8 -> 79.3 % without the negated examples, in the
# experiment harness); on the sets it trains for, unchanged within a run's spread.
TRAINING_VALENCE = 1.5
TRAINING_REPEATS = 3
TRAINING_LABELS = frozenset({"positive", "negative"})  # a job of other labels ("0", "1") gets none


@lru_cache(maxsize=1)
def analyzer() -> SentimentIntensityAnalyzer:
    """VADER, its lexicon files read once per process (~0.3 s): call it at model load, not on
    the first request."""
    return SentimentIntensityAnalyzer()


def features(texts: Sequence[str], name: str = NAME) -> np.ndarray:
    """(len(texts), 4) float array: VADER's compound (-1..1) and pos/neg/neu shares (0..1) of each
    text, as lexicon `name` (NAME or PLAIN) reads it."""
    read = _READERS[name]
    return np.array([_scores(read(text)) for text in texts], dtype=np.float64).reshape(len(texts), len(FEATURES))


def _scores(text: str) -> tuple[float, ...]:
    """VADER's scores of `text`; a text over PIECE_WORDS words is scored in pieces of that many,
    averaged by their words: VADER's time grows with the square of a text's length (one of
    600 characters took 100 ms, and a 6 MB request of them minutes)."""
    words = text.split()
    pieces = [" ".join(words[start:start + PIECE_WORDS]) for start in range(0, len(words), PIECE_WORDS)]
    if len(pieces) <= 1:
        pieces = [text]
    rows = [_cached_vader(piece) if len(piece) <= CACHED_CHARS else _vader(piece) for piece in pieces]
    if len(rows) == 1:
        return rows[0]
    return tuple(np.average(rows, axis=0, weights=[len(piece.split()) for piece in pieces]).tolist())


def _vader(text: str) -> tuple[float, ...]:
    score = analyzer().polarity_scores(text)
    return score["compound"], score["pos"], score["neg"], score["neu"]


# Check-ins repeat ("ok", "good", a participant's usual words) and VADER reads ~80k characters/s.
# Only short texts are kept, so that the cache stays under ~30 MB whatever clients send.
_cached_vader = lru_cache(maxsize=100_000)(_vader)


def training_examples() -> list[Example]:
    """VADER's single words of clear feeling (letters only: emoticons are VADER's to read) as one-word
    examples labelled positive or negative, and negated ("not great") the other way round, as VADER
    reads a negation; each TRAINING_REPEATS times, in the lexicon's order. A word its reading takes
    out ("honestly", +2.0) teaches nothing: it says a message is frank, not what it feels."""
    examples = []
    for word, valence in analyzer().lexicon.items():
        if abs(valence) >= TRAINING_VALENCE and word.isalpha() and without_idioms(word) == word:
            label, negated = ("positive", "negative") if valence > 0 else ("negative", "positive")
            examples += [Example(word, label), Example(f"not {word}", negated)]
    return examples * TRAINING_REPEATS


def no_feeling(rows: np.ndarray) -> np.ndarray:
    """Which rows of `features()` found no word of feeling at all (compound, pos and neg all 0)."""
    return ~rows[:, :3].any(axis=1)
