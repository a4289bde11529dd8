"""The four alert rules, and episodes: an alert is raised once when its rule starts holding, not
again every day it stays true.

Each rule is a per-participant, per-day condition over the day grid:

- `crisis`: a negative check-in with confidence >= `crisis_confidence`: the "immediate action" case.
- `negative_days`: the last `negative_days` days with a recognized check-in all have a negative mean
  (days without one neither break nor extend the run: an unrecognized day is not a good day).
- `drop`: the 7-day mean fell at least `drop` below the mean of the participant's own previous
  `drop_baseline_days` days (with at least `drop_min_recent` and `drop_min_baseline` recognized
  check-ins in them, so a few messages do not make a trend).
- `silence`: a participant who checked in on at least `silence_regularity` of the
  `silence_lookback` days before going quiet has now missed more than `silence_days` days.

An episode is a run of days where the rule holds; runs less than `rearm_days` apart are one episode.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

from checkins.series import Grid, max_negative, window_sums
from checkins.table import NEGATIVE, CheckIns

RULES = ("crisis", "negative_days", "drop", "silence")  # also the order of urgency


def _flag(default: float, help_text: str):
    return field(default=default, metadata={"help": help_text})


@dataclass(frozen=True)
class AlertSettings:
    """Every threshold of the rules; each is a flag of `report` (--crisis-confidence …)."""

    crisis_confidence: float = _flag(0.9, "crisis: a negative message at least this confident")
    negative_days: int = _flag(3, "negative_days: this many recognized days in a row with a negative mean")
    drop: float = _flag(0.5, "drop: fall of the 7-day mean signed confidence below the baseline's (scale -1 to 1)")
    drop_baseline_days: int = _flag(28, "drop: days before the 7-day window that make the baseline")
    drop_min_recent: int = _flag(4, "drop: fewest recognized check-ins in the 7 days")
    drop_min_baseline: int = _flag(14, "drop: fewest recognized check-ins in the baseline")
    silence_days: int = _flag(2, "silence: alert when more than this many days in a row are missed")
    silence_lookback: int = _flag(14, "silence: days before the gap that show whether the participant checked in daily")
    silence_regularity: float = _flag(0.8, "silence: share of those days with a check-in that counts as daily")
    rearm_days: int = _flag(7, "days a rule must stay false before it raises a new episode")


def setting_fields() -> list:
    """The settings' dataclass fields (name, type, default, metadata["help"]), for the CLI and the docs."""
    return list(fields(AlertSettings))


@dataclass
class Alert:
    """One episode of one rule for one participant; days are ordinals, `rows` index the CheckIns."""

    rule: str
    participant: int
    day: int
    last_day: int
    ongoing: bool
    detail: str
    rows: list[int]
    values: dict = field(default_factory=dict)


def find_alerts(checkins: CheckIns, grid: Grid, cells: np.ndarray, settings: AlertSettings) -> list[Alert]:
    """Every episode of every rule, most urgent rule first, then by day."""
    silence, last_seen = _silence(grid, settings)
    means = grid.rolling_mean(7), grid.rolling_mean(settings.drop_baseline_days, offset=7)
    conditions = {
        "crisis": max_negative(checkins, cells, grid.count.shape) >= settings.crisis_confidence,
        "negative_days": _negative_run(grid) >= settings.negative_days,
        "drop": _drop(grid, settings, *means),
        "silence": silence,
    }
    alerts = []
    for rule, condition in conditions.items():
        for row, start, end in episodes(condition, settings.rearm_days):
            alerts.append(_alert(rule, row, start, end, checkins, grid, settings, last_seen, means))
    return alerts


def episodes(condition: np.ndarray, rearm_days: int) -> list[tuple[int, int, int]]:
    """(row, first column, last column) of each episode of a [rows, days] boolean condition."""
    padded = np.zeros((condition.shape[0], condition.shape[1] + 2), np.int8)
    padded[:, 1:-1] = condition
    change = np.diff(padded, axis=1)
    rows, starts = np.nonzero(change == 1)
    _, ends = np.nonzero(change == -1)  # exclusive; same order as the starts (row-major)
    if not len(rows):
        return []
    new = np.ones(len(rows), bool)
    new[1:] = (rows[1:] != rows[:-1]) | (starts[1:] - ends[:-1] >= rearm_days)
    first = np.flatnonzero(new)
    last = np.append(first[1:] - 1, len(rows) - 1)
    return [(int(rows[f]), int(starts[f]), int(ends[j]) - 1) for f, j in zip(first, last)]


def _negative_run(grid: Grid) -> np.ndarray:
    """Per cell, how many recognized days in a row, ending there, had a negative mean (0 elsewhere)."""
    mean = grid.mean()
    valid = ~np.isnan(mean)
    rows, cols = np.nonzero(valid)
    negative = mean[rows, cols] < 0
    index = np.arange(len(rows))
    first_of_row = np.ones(len(rows), bool)
    first_of_row[1:] = rows[1:] != rows[:-1]
    breaks = np.maximum(np.where(~negative, index, -1), np.where(first_of_row, index - 1, -1))
    run = np.where(negative, index - np.maximum.accumulate(breaks), 0)
    out = np.zeros(mean.shape, np.int32)
    out[rows, cols] = run
    return out


def _drop(grid: Grid, settings: AlertSettings, recent: np.ndarray, baseline: np.ndarray) -> np.ndarray:
    recent_n = window_sums(grid.recognized, 7)
    baseline_n = window_sums(grid.recognized, settings.drop_baseline_days, offset=7)
    with np.errstate(invalid="ignore"):
        fell = baseline - recent >= settings.drop
    return fell & (recent_n >= settings.drop_min_recent) & (baseline_n >= settings.drop_min_baseline)


def _silence(grid: Grid, settings: AlertSettings) -> tuple[np.ndarray, np.ndarray]:
    """The condition, and per cell the column of the last check-in up to it (-1 before the first)."""
    has = grid.count > 0
    columns = np.arange(grid.days)
    last_seen = np.maximum.accumulate(np.where(has, columns, -1), axis=1)
    first_seen = np.where(has.any(axis=1), has.argmax(axis=1), grid.days)[:, None]
    cumulative = np.zeros((has.shape[0], grid.days + 1), np.int32)
    np.cumsum(has, axis=1, out=cumulative[:, 1:])
    seen = np.maximum(last_seen, 0)
    history = np.minimum(settings.silence_lookback, seen - first_seen + 1)
    rows = np.arange(has.shape[0])[:, None]
    checked = cumulative[rows, seen + 1] - cumulative[rows, np.maximum(seen + 1 - settings.silence_lookback, 0)]
    regular = (history >= min(7, settings.silence_lookback)) & (checked >= settings.silence_regularity * history)
    condition = (last_seen >= 0) & (columns - last_seen > settings.silence_days) & regular
    return condition, last_seen


def _alert(rule: str, row: int, start: int, end: int, checkins: CheckIns, grid: Grid, settings: AlertSettings,
           last_seen: np.ndarray, means: tuple[np.ndarray, np.ndarray]) -> Alert:
    rows = checkins.rows_of(row)
    days = checkins.day[rows] - grid.first_day
    index = np.arange(rows.start, rows.stop)
    negative = checkins.sentiment[rows] == NEGATIVE
    confidence = checkins.confidence[rows]
    values: dict = {}
    if rule == "crisis":
        evidence = index[(days == start) & negative & (confidence >= settings.crisis_confidence)]
        detail = f"a negative message with confidence {float(confidence[evidence - rows.start].max()):.2f}"
    elif rule == "negative_days":
        recognized_days = np.flatnonzero(grid.recognized[row, :start + 1] > 0)[-settings.negative_days:]
        evidence = index[np.isin(days, recognized_days) & negative]
        means = [round(float(grid.signed[row, d] / grid.recognized[row, d]), 2) for d in recognized_days]
        values = {"daily_means": means}
        detail = f"{settings.negative_days} days in a row with a negative mean ({', '.join(map(str, means))})"
    elif rule == "drop":
        recent, baseline = float(means[0][row, start]), float(means[1][row, start])
        evidence = index[(days > start - 7) & (days <= start) & negative]
        values = {"recent_mean": round(recent, 3), "baseline_mean": round(baseline, 3)}
        detail = (f"7-day mean {recent:+.2f} against {baseline:+.2f} over the previous "
                  f"{settings.drop_baseline_days} days")
    else:
        seen = int(last_seen[row, start])
        evidence = index[days <= seen][-3:]
        values = {"last_check_in": seen + grid.first_day, "days_missed": end - seen}
        detail = f"no check-in for {end - seen} days after checking in daily"
    return Alert(rule, row, start + grid.first_day, end + grid.first_day, end == grid.days - 1, detail,
                 [int(i) for i in evidence], values)
