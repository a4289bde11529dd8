"""Scored check-ins held as columns (numpy arrays), so millions fit in little memory.

Messages are not kept: each row keeps its line in the input file, and the few messages an alert
shows are read again from there (`readers.rows_at`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from checkins.readers import Row, Verdict

# Sentiment codes in the `sentiment` column.
POSITIVE, NEGATIVE, UNRECOGNIZED = 1, -1, 0
CODES = {"positive": POSITIVE, "negative": NEGATIVE}


@dataclass
class CheckIns:
    """Every check-in as a row of parallel columns, sorted by participant then day.

    A participant is a (group, participant id) pair: someone who moves group starts afresh there.
    """

    names: list[str]           # participant id, by participant index
    groups: list[str]          # group name, by group index
    group_of: np.ndarray       # int32: each participant's group index
    participant: np.ndarray    # int32 per row
    day: np.ndarray            # int32 per row: the local date's ordinal
    sentiment: np.ndarray      # int8 per row: POSITIVE, NEGATIVE or UNRECOGNIZED
    confidence: np.ndarray     # float32 per row: the model's top probability
    line: np.ndarray           # int32 per row: where it starts in the input file

    def __len__(self) -> int:
        return len(self.day)

    @cached_property
    def offsets(self) -> np.ndarray:
        """Where each participant's rows start, and the end: searched once, not once per alert."""
        return np.searchsorted(self.participant, np.arange(len(self.names) + 1, dtype=self.participant.dtype))

    def rows_of(self, participant: int) -> slice:
        """The rows of one participant (the table is sorted by participant)."""
        return slice(int(self.offsets[participant]), int(self.offsets[participant + 1]))


class TableBuilder:
    """Collects scored rows chunk by chunk, then sorts them once into a `CheckIns`."""

    def __init__(self) -> None:
        self.index: dict[tuple[str, str], int] = {}
        self.group_index: dict[str, int] = {}
        self.group_of: list[int] = []
        self.chunks: list[tuple[np.ndarray, ...]] = []

    def add(self, rows: Sequence[Row], verdicts: Sequence[Verdict]) -> None:
        """Append `rows` with their verdicts (same order)."""
        participants = np.empty(len(rows), np.int32)
        for i, row in enumerate(rows):
            key = (row.group, row.participant)
            number = self.index.get(key)
            if number is None:
                number = self.index[key] = len(self.index)
                self.group_of.append(self.group_index.setdefault(row.group, len(self.group_index)))
            participants[i] = number
        self.chunks.append((
            participants,
            np.fromiter((row.day for row in rows), np.int32, len(rows)),
            np.fromiter((CODES.get(v.sentiment, UNRECOGNIZED) for v in verdicts), np.int8, len(rows)),
            np.fromiter((v.confidence for v in verdicts), np.float32, len(rows)),
            np.fromiter((row.line for row in rows), np.int32, len(rows)),
        ))

    def build(self) -> CheckIns:
        columns = [np.concatenate(parts) if parts else np.empty(0, dtype)
                   for parts, dtype in zip(zip(*self.chunks) if self.chunks else [()] * 5,
                                           (np.int32, np.int32, np.int8, np.float32, np.int32))]
        self.chunks.clear()  # free the chunks before sorting makes copies
        order = np.lexsort((columns[4], columns[1], columns[0]))
        names = [""] * len(self.index)
        for (_, name), number in self.index.items():
            names[number] = name
        return CheckIns(names, list(self.group_index), np.asarray(self.group_of, np.int32),
                        *(column[order] for column in columns))
