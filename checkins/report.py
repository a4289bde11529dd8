"""The output folder: data files, charts and report.html for one analysis."""

from __future__ import annotations

from pathlib import Path

from checkins.charts import group_chart, participant_chart
from checkins.html_report import render
from checkins.output import write_all
from checkins.pipeline import Analysis

PARTICIPANT_CHARTS = ("all", "alerts", "none")


def write_report(analysis: Analysis, out: Path, participant_charts: str = "all") -> Path:
    """Write everything into `out`; participant charts (and sections) for every participant, only
    those with an alert, or none (at 10,000 participants the charts take most of the time)."""
    write_all(analysis, out)
    charts_dir = out / "charts"
    charts_dir.mkdir(exist_ok=True)
    charts: dict[str, str] = {}
    for index, shown in enumerate(analysis.shown_groups):
        if shown:
            name = f"charts/group-{index}.png"
            group_chart(analysis, index, out / name)
            charts[f"g{index}"] = name
    alerted: dict[int, list] = {}
    for alert in analysis.alerts:
        alerted.setdefault(alert.participant, []).append(alert)
    everyone = range(len(analysis.checkins.names))
    participants = {"all": list(everyone), "alerts": sorted(alerted), "none": sorted(alerted)}[participant_charts]
    if participant_charts != "none":
        for index in participants:
            name = f"charts/participant-{index}.png"
            participant_chart(analysis, index, alerted.get(index, []), out / name)
            charts[f"p{index}"] = name
    return render(analysis, out, charts, participants)
