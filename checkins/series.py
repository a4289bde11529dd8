"""Daily series per participant and per group, as day grids: one row per participant (or group),
one column per calendar day from the first check-in in the data to the last.

Per day: check-ins, positive, negative and unrecognized counts, the share positive (of the recognized
ones), the mean signed confidence (+confidence for positive, -confidence for negative, unrecognized
left out) and its rolling 7-day mean (over the recognized check-ins of the 7 days ending that day).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from checkins.table import NEGATIVE, POSITIVE, UNRECOGNIZED, CheckIns

ROLLING_DAYS = 7


@dataclass
class Grid:
    """Per-day sums for each row (participant or group), starting on ordinal day `first_day`."""

    first_day: int
    count: np.ndarray         # int32 [rows, days]
    positive: np.ndarray      # int32
    negative: np.ndarray      # int32
    unrecognized: np.ndarray  # int32
    signed: np.ndarray        # float64: sum of signed confidences of the recognized check-ins

    @property
    def days(self) -> int:
        return self.count.shape[1]

    @cached_property
    def recognized(self) -> np.ndarray:
        """Positive plus negative check-ins per day (computed once: alerts read it per episode)."""
        return self.positive + self.negative

    def share_positive(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.positive / self.recognized

    def mean(self) -> np.ndarray:
        """Mean signed confidence per day; NaN on days with no recognized check-in."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.signed / self.recognized

    def rolling_mean(self, window: int = ROLLING_DAYS, offset: int = 0) -> np.ndarray:
        """Mean signed confidence over the `window` days ending `offset` days before each day
        (NaN where that window holds no recognized check-in)."""
        signed, recognized = window_sums(self.signed, window, offset), window_sums(self.recognized, window, offset)
        with np.errstate(invalid="ignore", divide="ignore"):
            return signed / recognized


def window_sums(values: np.ndarray, window: int, offset: int = 0) -> np.ndarray:
    """For each day d, the sum of `values` over days d-offset-window+1 … d-offset (days before the
    grid count as 0)."""
    cumulative = np.zeros((values.shape[0], values.shape[1] + 1), np.float64)
    np.cumsum(values, axis=1, out=cumulative[:, 1:])
    days = np.arange(values.shape[1])
    end = np.clip(days - offset + 1, 0, values.shape[1])
    start = np.clip(days - offset - window + 1, 0, values.shape[1])
    return cumulative[:, end] - cumulative[:, start]


def participant_grid(checkins: CheckIns, first_day: int, days: int) -> tuple[Grid, np.ndarray]:
    """The participants' grid, and the cell (row × days + column) of every check-in."""
    cells = checkins.participant.astype(np.int64) * days + (checkins.day - first_day)
    size = len(checkins.names) * days

    def counts(mask: np.ndarray | None = None) -> np.ndarray:
        chosen = cells if mask is None else cells[mask]
        return np.bincount(chosen, minlength=size).astype(np.int32).reshape(-1, days)

    signs = np.where(checkins.sentiment == UNRECOGNIZED, 0.0, checkins.sentiment.astype(np.float64))
    signed = np.bincount(cells, weights=signs * checkins.confidence, minlength=size).reshape(-1, days)
    grid = Grid(first_day, counts(), counts(checkins.sentiment == POSITIVE), counts(checkins.sentiment == NEGATIVE),
                counts(checkins.sentiment == UNRECOGNIZED), signed)
    return grid, cells


def group_grid(grid: Grid, group_of: np.ndarray, groups: int) -> Grid:
    """The groups' grid: the sums of their participants' rows."""
    def total(values: np.ndarray) -> np.ndarray:
        out = np.zeros((groups, values.shape[1]), values.dtype)
        np.add.at(out, group_of, values)
        return out

    return Grid(grid.first_day, total(grid.count), total(grid.positive), total(grid.negative),
                total(grid.unrecognized), total(grid.signed))


def max_negative(checkins: CheckIns, cells: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Per cell, the highest confidence of a negative check-in (0 where there is none)."""
    out = np.zeros(shape[0] * shape[1], np.float32)
    negative = checkins.sentiment == NEGATIVE
    np.maximum.at(out, cells[negative], checkins.confidence[negative])
    return out.reshape(shape)


def group_sizes(checkins: CheckIns) -> np.ndarray:
    """Participants per group index."""
    return np.bincount(checkins.group_of, minlength=len(checkins.groups))


def spans(grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """Each row's first and last column with a check-in (-1, -1 for a row without any)."""
    has = grid.count > 0
    any_ = has.any(axis=1)
    first = np.where(any_, has.argmax(axis=1), -1)
    last = np.where(any_, grid.days - 1 - has[:, ::-1].argmax(axis=1), -1)
    return first, last
