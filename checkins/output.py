"""The report's data files: series.csv, alerts.jsonl, alerts.csv and bad-rows.csv.

series.csv has one row per participant and day from their first check-in to their last (missed
days included, with 0 check-ins), and one per shown group and day; suppressed groups have no rows.
"""

from __future__ import annotations

import csv
import json
import math
from datetime import date
from pathlib import Path

import numpy as np

from checkins.pipeline import Analysis
from checkins.series import Grid, spans

SERIES_COLUMNS = ("level", "group", "participant", "date", "check_ins", "positive", "negative", "unrecognized",
                  "share_positive", "mean_signed_confidence", "rolling_7day_mean")
ALERT_COLUMNS = ("id", "rule", "group", "participant", "raised", "last_day", "ongoing", "needs_attention", "detail",
                 "messages")


def write_all(analysis: Analysis, out: Path) -> None:
    """Write every data file into `out` (created if needed)."""
    out.mkdir(parents=True, exist_ok=True)
    write_series(analysis, out / "series.csv")
    write_alerts(analysis.records, out / "alerts.jsonl", out / "alerts.csv")
    with (out / "bad-rows.csv").open("w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["line", "reason"])
        writer.writerows((bad.line, bad.reason) for bad in analysis.bad_rows)


def write_series(analysis: Analysis, path: Path) -> None:
    checkins = analysis.checkins
    with path.open("w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(SERIES_COLUMNS)
        labels = [("participant", checkins.groups[g], name) for name, g in zip(checkins.names, checkins.group_of)]
        _rows(writer, analysis.grid, labels, np.ones(len(labels), bool))
        groups = [("group", name, "") for name in checkins.groups]
        _rows(writer, analysis.groups, groups, analysis.shown_groups)


def _rows(writer, grid: Grid, labels: list[tuple[str, str, str]], shown: np.ndarray) -> None:
    share, mean, rolling = grid.share_positive(), grid.mean(), grid.rolling_mean()
    first, last = spans(grid)
    dates = [date.fromordinal(grid.first_day + d).isoformat() for d in range(grid.days)]
    for row, label in enumerate(labels):
        if not shown[row] or first[row] < 0:
            continue
        cut = slice(int(first[row]), int(last[row]) + 1)
        columns = zip(dates[cut], grid.count[row, cut].tolist(), grid.positive[row, cut].tolist(),
                      grid.negative[row, cut].tolist(), grid.unrecognized[row, cut].tolist(),
                      map(_number, share[row, cut].tolist()), map(_number, mean[row, cut].tolist()),
                      map(_number, rolling[row, cut].tolist()))
        writer.writerows((*label, *values) for values in columns)


def _number(value: float) -> str:
    return "" if math.isnan(value) else f"{value:.4f}"


def write_alerts(records: list[dict], jsonl: Path, csv_path: Path) -> None:
    """alerts.jsonl holds each alert whole; alerts.csv one line per alert, messages joined by " | "."""
    with jsonl.open("w", encoding="utf-8") as file:
        file.writelines(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
    with csv_path.open("w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(ALERT_COLUMNS)
        for record in records:
            messages = " | ".join(f"{m['time']} [{m['sentiment']} {m['confidence']:.2f}] {m['message']}"
                                  for m in record["messages"])
            writer.writerow([*(record[name] for name in ALERT_COLUMNS[:-1]), messages])
