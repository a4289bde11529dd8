"""From a check-in file to series, alerts and the groups shown: the report's computation, without output.

Rows are read and scored in chunks, so memory holds the columns of the scored table, not the text.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np

from checkins.alerts import RULES, Alert, AlertSettings, find_alerts
from checkins.readers import BadRow, Row, read_rows, rows_at
from checkins.scoring import Progress, Scorer
from checkins.series import Grid, group_grid, group_sizes, participant_grid
from checkins.table import CheckIns, TableBuilder

CHUNK = 20_000
RECENT_DAYS = 14  # alerts raised or still open this close to the end of the data are "needs attention"


@dataclass
class Analysis:
    """Everything the outputs are made of."""

    source: Path
    checkins: CheckIns
    grid: Grid
    groups: Grid
    group_sizes: np.ndarray
    shown_groups: np.ndarray   # bool per group: at least `min_group` participants
    min_group: int
    alerts: list[Alert]
    records: list[dict]        # the alerts as written out, messages included, in `alerts` order
    bad_rows: list[BadRow]
    settings: AlertSettings

    def day(self, column: int) -> date:
        return date.fromordinal(self.grid.first_day + column)


def analyse(source: Path, scorer: Scorer | None, settings: AlertSettings, min_group: int = 5,
            threshold: float = 0.0) -> Analysis:
    """Read, score (rows without a verdict need `scorer`), and compute series and alerts."""
    bad: list[BadRow] = []
    builder = TableBuilder()
    progress = Progress(_count_lines(source) if Progress(None).enabled else None)
    chunk: list[Row] = []
    for row in read_rows(source, bad, threshold):
        chunk.append(row)
        if len(chunk) == CHUNK:
            _add(builder, chunk, scorer, source)
            progress.advance(len(chunk))
            chunk = []
    if chunk:
        _add(builder, chunk, scorer, source)
        progress.advance(len(chunk))
    progress.close()
    checkins = builder.build()
    if not len(checkins):
        raise ValueError(f"{source}: no usable check-ins ({len(bad)} bad rows"
                         + (f", first: line {bad[0].line}: {bad[0].reason}" if bad else "") + ")")
    first_day = int(checkins.day.min())
    grid, cells = participant_grid(checkins, first_day, int(checkins.day.max()) - first_day + 1)
    sizes = group_sizes(checkins)
    alerts = find_alerts(checkins, grid, cells, settings)
    alerts.sort(key=lambda a: (_attention_rank(a, grid), RULES.index(a.rule), -a.day))
    analysis = Analysis(source, checkins, grid, group_grid(grid, checkins.group_of, len(checkins.groups)), sizes,
                        sizes >= min_group, min_group, alerts, [], bad, settings)
    analysis.records = _records(analysis)
    return analysis


def _add(builder: TableBuilder, chunk: list[Row], scorer: Scorer | None, source: Path) -> None:
    unscored = [row.message for row in chunk if row.verdict is None]
    if unscored and scorer is None:
        raise ValueError(f"{source}: rows without the model's answer need --endpoint or --model-dir")
    scored = iter(scorer.score(unscored) if unscored else [])
    builder.add(chunk, [row.verdict or next(scored) for row in chunk])


def _count_lines(path: Path) -> int:
    """Lines in the file, for the progress bar's total (a header line makes it one too many at most)."""
    with path.open("rb") as file:
        return sum(block.count(b"\n") for block in iter(lambda: file.read(1 << 20), b""))


def needs_attention(alert: Alert, grid: Grid) -> bool:
    """Still open, or raised within the last RECENT_DAYS days of the data."""
    last = grid.first_day + grid.days - 1
    return alert.ongoing or alert.day > last - RECENT_DAYS


def _attention_rank(alert: Alert, grid: Grid) -> int:
    return 0 if needs_attention(alert, grid) else 1


def alert_id(group: str, participant: str, rule: str, day: int) -> str:
    """Stable across runs: the same episode keeps its id when the data grows."""
    return f"{group}/{participant}/{rule}/{date.fromordinal(day).isoformat()}"


def _records(analysis: Analysis) -> list[dict]:
    checkins = analysis.checkins
    wanted = {int(checkins.line[i]) for alert in analysis.alerts for i in alert.rows}
    rows = rows_at(analysis.source, wanted) if wanted else {}
    sentiments = {1: "positive", -1: "negative", 0: "unrecognized"}
    records = []
    for alert in analysis.alerts:
        group = checkins.groups[checkins.group_of[alert.participant]]
        name = checkins.names[alert.participant]
        messages = []
        for i in alert.rows:
            row = rows.get(int(checkins.line[i]))
            messages.append({"time": row.time if row else "", "message": row.message if row else "",
                             "sentiment": sentiments[int(checkins.sentiment[i])],
                             "confidence": round(float(checkins.confidence[i]), 4), "line": int(checkins.line[i])})
        records.append({
            "id": alert_id(group, name, alert.rule, alert.day), "rule": alert.rule, "participant": name,
            "group": group, "raised": date.fromordinal(alert.day).isoformat(),
            "last_day": date.fromordinal(alert.last_day).isoformat(), "ongoing": alert.ongoing,
            "needs_attention": needs_attention(alert, analysis.grid), "detail": alert.detail,
            "values": _iso_days(alert.values), "messages": messages,
        })
    return records


def _iso_days(values: dict) -> dict:
    return {key: date.fromordinal(value).isoformat() if key == "last_check_in" else value
            for key, value in values.items()}
