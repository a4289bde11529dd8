"""VADER's sentiment lexicon (MIT, shipped inside the `vaderSentiment` package) as features.

VADER reads raw text, not our cleaned tokens: it scores capitals, "!!!", emoticons,
emoji (through its emoji lexicon), negation ("not great") and intensifiers itself.
It knows words our training data rarely holds (first-person accounts of feelings,
the closest text to a check-in), so the predictor weighs it against the trained
model (`model.combiner`).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

NAME = "vader-3.3.2"
FEATURES = ("vader_compound", "vader_pos", "vader_neg", "vader_neu")


@lru_cache(maxsize=1)
def _analyzer() -> SentimentIntensityAnalyzer:
    return SentimentIntensityAnalyzer()  # reads its lexicon files once per process (~0.3 s)


def features(texts: Sequence[str]) -> np.ndarray:
    """(len(texts), 4) float array: VADER's compound (-1..1) and pos/neg/neu shares (0..1) of each text."""
    analyzer = _analyzer()
    scores = [analyzer.polarity_scores(text) for text in texts]
    return np.array([[s["compound"], s["pos"], s["neg"], s["neu"]] for s in scores], dtype=np.float64
                    ).reshape(len(texts), len(FEATURES))


def no_feeling(rows: np.ndarray) -> np.ndarray:
    """Which rows of `features()` found no word of feeling at all (compound, pos and neg all 0)."""
    return (rows[:, 0] == 0) & (rows[:, 1] == 0) & (rows[:, 2] == 0)
