"""report.html: what a manager opens. Who needs attention first, the groups, every alert with the
messages behind it, and each participant's chart. A single file beside its PNGs, no scripts."""

from __future__ import annotations

import math
from html import escape
from pathlib import Path

import numpy as np

from checkins.alerts import RULES
from checkins.pipeline import Analysis

RULE_NAMES = {"crisis": "Crisis message", "negative_days": "Negative days in a row",
              "drop": "Drop against own baseline", "silence": "Gone silent"}
STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px auto; max-width: 1100px; color: #222; padding: 0 16px; }
h1 { font-size: 22px; } h2 { font-size: 18px; border-bottom: 1px solid #ddd; padding-bottom: 4px; margin-top: 32px; }
table { border-collapse: collapse; width: 100%; margin: 8px 0; } th, td { text-align: left; padding: 4px 8px; }
th { background: #f2f2f2; } tr:nth-child(even) td { background: #fafafa; }
.rule { display: inline-block; padding: 1px 8px; border-radius: 10px; color: white; font-size: 12px; }
.crisis { background: #b30000; } .negative_days { background: #e66101; } .drop { background: #5e3c99; }
.silence { background: #4d4d4d; } .note { background: #fff7e0; border-left: 4px solid #e6a700; padding: 8px 12px; }
.msg { color: #444; } .negative { color: #b30000; } .positive { color: #1a7f37; } .unrecognized { color: #777; }
img { max-width: 100%; border: 1px solid #eee; } details { margin: 4px 0 10px; } summary { cursor: pointer; }
.figures { display: flex; gap: 24px; flex-wrap: wrap; } .figures div { background: #f6f8fa; padding: 8px 14px; }
"""


def render(analysis: Analysis, out: Path, charts: dict[str, str], participants: list[int]) -> Path:
    """Write out/report.html; `charts` maps "g<index>"/"p<index>" to PNG file names in `out`,
    `participants` are the participants given a section."""
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Check-ins report</title>"
             f"<style>{STYLE}</style></head><body>", _summary(analysis), _attention(analysis),
             _groups(analysis, charts), _alerts(analysis), _participants(analysis, charts, participants),
             _bad_rows(analysis), "</body></html>"]
    path = out / "report.html"
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def _participant_link(record: dict) -> str:
    return f"<a href='#{escape(_anchor(record))}'>{escape(record['participant'])}</a>"


def _anchor(record: dict) -> str:
    return f"p-{record['group']}-{record['participant']}".replace(" ", "_")


def _summary(analysis: Analysis) -> str:
    checkins, grid = analysis.checkins, analysis.grid
    unrecognized = int(grid.unrecognized.sum())
    figures = {"participants": len(checkins.names), "groups": len(checkins.groups), "check-ins": len(checkins),
               "unrecognized": f"{unrecognized:,} ({unrecognized / len(checkins):.0%})",
               "alerts": len(analysis.records), "bad rows": len(analysis.bad_rows)}
    boxes = "".join(f"<div><b>{escape(f'{v:,}' if isinstance(v, int) else v)}</b><br>{escape(k)}</div>"
                    for k, v in figures.items())
    settings = ", ".join(f"{name}={value}" for name, value in vars(analysis.settings).items())
    return (f"<h1>Check-ins report</h1><p>{escape(analysis.source.name)}: {analysis.day(0)} to "
            f"{analysis.day(grid.days - 1)}. Unrecognized messages are shown and counted, never guessed.</p>"
            f"<div class='figures'>{boxes}</div><p class='msg'>Rules: {escape(settings)}</p>")


def _badge(rule: str) -> str:
    return f"<span class='rule {rule}'>{escape(RULE_NAMES[rule])}</span>"


def _attention(analysis: Analysis) -> str:
    urgent = [r for r in analysis.records if r["needs_attention"]]
    if not urgent:
        return "<h2>Needs attention first</h2><p>No alert is open or recent.</p>"
    rows = "".join(f"<tr><td>{_badge(r['rule'])}</td><td>{_participant_link(r)}</td>"
                   f"<td>{escape(r['group'])}</td><td>{r['raised']}</td><td>{'open' if r['ongoing'] else r['last_day']}"
                   f"</td><td>{escape(r['detail'])}</td></tr>" for r in urgent)
    return ("<h2 id='attention'>Needs attention first</h2><p>Open alerts and alerts of the last 14 days, most "
            "urgent rule first, then the most recent.</p><table><tr><th>rule</th><th>participant</th><th>group</th>"
            f"<th>raised</th><th>until</th><th>why</th></tr>{rows}</table>")


def _groups(analysis: Analysis, charts: dict[str, str]) -> str:
    grid, rolling = analysis.groups, analysis.groups.rolling_mean()
    html = ["<h2>Groups</h2>"]
    suppressed = [(name, int(size)) for name, size, shown in
                  zip(analysis.checkins.groups, analysis.group_sizes, analysis.shown_groups) if not shown]
    if suppressed:
        listed = ", ".join(f"{escape(name)} ({size} participant{'s' * (size != 1)})" for name, size in suppressed)
        html.append(f"<p class='note'>Group figures and charts are not shown for groups with fewer than "
                    f"{analysis.min_group} participants, so that no one's feelings can be read from them: "
                    f"{listed}. Their participants' own views are below, for their manager.</p>")
    rows = []
    for index, name in enumerate(analysis.checkins.groups):
        if not analysis.shown_groups[index]:
            continue
        last = rolling[index][~np.isnan(rolling[index])]
        share = grid.positive[index].sum() / max(1, grid.recognized[index].sum())
        rows.append(f"<tr><td>{escape(name)}</td><td>{analysis.group_sizes[index]}</td>"
                    f"<td>{grid.count[index].sum():,}</td><td>{share:.0%}</td>"
                    f"<td>{_signed(last[-1] if len(last) else math.nan)}</td></tr>")
    if rows:
        html.append("<table><tr><th>group</th><th>participants</th><th>check-ins</th><th>positive</th>"
                    f"<th>7-day mean at the end</th></tr>{''.join(rows)}</table>")
    html += [f"<img src='{escape(charts[f'g{i}'])}' alt='group {escape(name)}'>"
             for i, name in enumerate(analysis.checkins.groups) if f"g{i}" in charts]
    return "".join(html)


def _signed(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:+.2f}"


def _messages(record: dict) -> str:
    items = "".join(f"<li><span class='{m['sentiment']}'>{m['sentiment']} {m['confidence']:.2f}</span> "
                    f"<span class='msg'>{escape(m['time'])}: “{escape(m['message'])}”</span></li>"
                    for m in record["messages"])
    return f"<ul>{items}</ul>" if items else "<p class='msg'>(no message behind it)</p>"


def _alerts(analysis: Analysis) -> str:
    html = ["<h2>Alerts</h2>"]
    counts = {rule: sum(r["rule"] == rule for r in analysis.records) for rule in RULES}
    html.append("<p>" + " · ".join(f"{_badge(rule)} {n}" for rule, n in counts.items()) + "</p>")
    for record in analysis.records:
        html.append(f"<details{' open' if record['needs_attention'] else ''}><summary>{_badge(record['rule'])} "
                    f"<b>{escape(record['participant'])}</b> ({escape(record['group'])}), {record['raised']}: "
                    f"{escape(record['detail'])}</summary>{_messages(record)}</details>")
    return "".join(html)


def _participants(analysis: Analysis, charts: dict[str, str], participants: list[int]) -> str:
    checkins = analysis.checkins
    by_participant: dict[tuple[str, str], list[dict]] = {}
    for record in analysis.records:
        by_participant.setdefault((record["group"], record["participant"]), []).append(record)
    html = ["<h2>Participants</h2>"]
    for index in participants:
        group, name = checkins.groups[checkins.group_of[index]], checkins.names[index]
        records = by_participant.get((group, name), [])
        anchor = _anchor({"group": group, "participant": name})
        html.append(f"<h3 id='{escape(anchor)}'>{escape(name)} <small>({escape(group)})</small></h3>")
        if f"p{index}" in charts:
            html.append(f"<img src='{escape(charts[f'p{index}'])}' alt='{escape(name)}'>")
        html.append(" ".join(f"{_badge(r['rule'])} {r['raised']}" for r in records) or "<p>No alert.</p>")
    return "".join(html)


def _bad_rows(analysis: Analysis) -> str:
    if not analysis.bad_rows:
        return "<h2>Bad rows</h2><p>None: every row was read.</p>"
    rows = "".join(f"<tr><td>{b.line}</td><td>{escape(b.reason)}</td></tr>" for b in analysis.bad_rows[:100])
    more = len(analysis.bad_rows) - 100
    return (f"<h2>Bad rows</h2><p>{len(analysis.bad_rows)} rows were left out (all in bad-rows.csv)"
            f"{'; the first 100' if more > 0 else ''}:</p><table><tr><th>line</th><th>why</th></tr>{rows}</table>")
