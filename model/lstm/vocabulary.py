"""Words to ids: the vocabulary built from the training texts, one text's ids, a padded batch."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

PAD, UNK = 0, 1  # vocabulary ids


def build_vocabulary(texts: Sequence[str], max_vocab: int, min_count: int) -> list[str]:
    """Words of the cleaned `texts`, most frequent first, after the padding and unknown entries."""
    counts = Counter(word for text in texts for word in text.split())
    words = sorted((w for w, n in counts.items() if n >= min_count), key=lambda w: (-counts[w], w))
    return ["<pad>", "<unk>", *words[:max(0, max_vocab - 2)]]


def encode(cleaned: str, index: dict[str, int], max_len: int) -> list[int]:
    """Token ids of one cleaned text, truncated to max_len; an empty text is one unknown word."""
    ids = [index.get(word, UNK) for word in cleaned.split()[:max_len]]
    return ids or [UNK]


def pad(sequences: Sequence[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """(ids (B, T) int32 left-aligned and padded with PAD, lengths (B,) int32) of B id lists."""
    lengths = np.array([len(s) for s in sequences], np.int32)
    ids = np.full((len(sequences), int(lengths.max())), PAD, np.int32)
    for row, sequence in enumerate(sequences):
        ids[row, :len(sequence)] = sequence
    return ids, lengths
