"""PNG charts: one per shown group (a line per participant), one per participant (its check-ins marked).

The y axis is the signed confidence, -1 (surely negative) to +1 (surely positive); lines are the
rolling 7-day mean. Figures are made without pyplot, whose global state is not needed here.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from checkins.alerts import RULES, Alert
from checkins.pipeline import Analysis
from checkins.table import NEGATIVE, POSITIVE, UNRECOGNIZED

RULE_COLOURS = {"crisis": "#b30000", "negative_days": "#e66101", "drop": "#5e3c99", "silence": "#4d4d4d"}


def _dates(analysis: Analysis) -> np.ndarray:
    return np.datetime64(date.fromordinal(analysis.grid.first_day), "D") + np.arange(analysis.grid.days)


def _axes(title: str, width: float = 9.0):
    figure = Figure(figsize=(width, 3.2), dpi=100, layout="constrained")
    axes = figure.add_subplot()
    axes.set_title(title, fontsize=10, loc="left")
    axes.set_ylim(-1.05, 1.05)
    axes.axhline(0, color="#999999", linewidth=0.6)
    axes.set_ylabel("signed confidence", fontsize=8)
    axes.tick_params(labelsize=8)
    axes.grid(alpha=0.25)
    return figure, axes


def group_chart(analysis: Analysis, group: int, path: Path) -> None:
    """Each participant's rolling 7-day mean in grey, the group's in black."""
    dates, rolling = _dates(analysis), analysis.grid.rolling_mean()
    members = np.flatnonzero(analysis.checkins.group_of == group)
    name = analysis.checkins.groups[group]
    figure, axes = _axes(f"{name}: {len(members)} participants, rolling 7-day mean")
    alpha = max(0.08, min(0.6, 6 / max(len(members), 1)))
    for member in members:
        axes.plot(dates, rolling[member], color="#7f9fbf", linewidth=0.8, alpha=alpha)
    axes.plot(dates, analysis.groups.rolling_mean()[group], color="black", linewidth=2, label="group")
    axes.legend(loc="lower left", fontsize=8)
    figure.savefig(path)


def participant_chart(analysis: Analysis, participant: int, alerts: list[Alert], path: Path) -> None:
    """The rolling mean, every check-in as a dot (green positive, red negative, grey × unrecognized
    at 0), and a vertical line where each alert was raised."""
    checkins, rows = analysis.checkins, analysis.checkins.rows_of(participant)
    days = np.datetime64("0001-01-01", "D") + (checkins.day[rows].astype(np.int64) - 1)
    sentiment, confidence = checkins.sentiment[rows], checkins.confidence[rows]
    group = checkins.groups[checkins.group_of[participant]]
    figure, axes = _axes(f"{checkins.names[participant]} ({group})")
    axes.plot(_dates(analysis), analysis.grid.rolling_mean()[participant], color="black", linewidth=1.5,
              label="7-day mean")
    for code, colour, marker, label in ((POSITIVE, "#1a9641", "o", "positive"), (NEGATIVE, "#d7191c", "o", "negative"),
                                        (UNRECOGNIZED, "#888888", "x", "unrecognized")):
        chosen = sentiment == code
        y = confidence[chosen] * code if code else np.zeros(int(chosen.sum()))
        axes.scatter(days[chosen], y, s=12, c=colour, marker=marker, label=label, linewidths=1)
    for rule in RULES:  # one legend entry per rule, however many episodes
        raised = [np.datetime64(date.fromordinal(a.day), "D") for a in alerts if a.rule == rule]
        if raised:
            axes.vlines(raised, -1.05, 1.05, colors=RULE_COLOURS[rule], linestyles="--", linewidth=1.2,
                        label=f"alert: {rule}")
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), fontsize=7, ncol=7, frameon=False)  # off the dots
    figure.savefig(path)
