"""How well the alerts found what the generator planted: recall and false alerts per rule.

A planted situation is caught when an alert of its rule is raised for its participant between its
start and end. An alert that falls in no planted window of its rule for that participant is false;
a second alert inside one window is a repeat (episodes should make that 0).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import date

from checkins.alerts import RULES
from checkins.generator import Planted


def evaluate(records: Iterable[dict], planted: Iterable[Planted]) -> dict[str, dict]:
    """Per rule: planted, caught, recall, false alerts, repeats, median days from start to the alert,
    and which trajectories the false alerts came from."""
    windows: dict[tuple[str, str, str], list[Planted]] = {}
    kinds: dict[tuple[str, str], str] = {}
    for situation in planted:
        windows.setdefault((situation.group, situation.participant, situation.rule), []).append(situation)
    for situation in planted:
        kinds[situation.group, situation.participant] = situation.trajectory
    hits: Counter = Counter()
    first: dict[Planted, int] = {}
    false: dict[str, Counter] = {rule: Counter() for rule in RULES}
    for record in records:
        key = (record["group"], record["participant"], record["rule"])
        inside = [s for s in windows.get(key, []) if s.start <= record["raised"] <= s.end]
        if not inside:
            false[record["rule"]][kinds.get((record["group"], record["participant"]), "steady")] += 1
            continue
        hits[inside[0]] += 1
        lag = _days(inside[0].start, record["raised"])
        first[inside[0]] = min(first.get(inside[0], lag), lag)  # records come most urgent first, not by day
    table = {}
    for rule in RULES:
        situations = [s for group in windows.values() for s in group if s.rule == rule]
        caught = sum(1 for s in situations if hits[s])
        lags = sorted(first[s] for s in situations if s in first)
        table[rule] = {"planted": len(situations), "caught": caught,
                       "recall": caught / len(situations) if situations else None,
                       "false_alerts": sum(false[rule].values()), "false_by_trajectory": dict(false[rule]),
                       "repeats": sum(max(0, hits[s] - 1) for s in situations),
                       "median_days_to_alert": lags[len(lags) // 2] if lags else None}
    return table


def _days(start: str, end: str) -> int:
    return (date.fromisoformat(end) - date.fromisoformat(start)).days


def format_table(table: dict[str, dict], participants: int | None = None) -> str:
    """The table as aligned text lines."""
    lines = [f"{'rule':<14} {'planted':>7} {'caught':>6} {'recall':>7} {'false':>6} {'repeats':>7} "
             f"{'days to alert':>13}  false alerts by trajectory"]
    for rule, row in table.items():
        recall = f"{row['recall']:.1%}" if row["recall"] is not None else "–"
        lag = row["median_days_to_alert"]
        lines.append(f"{rule:<14} {row['planted']:>7} {row['caught']:>6} {recall:>7} {row['false_alerts']:>6} "
                     f"{row['repeats']:>7} {'–' if lag is None else lag:>13}  "
                     f"{', '.join(f'{k} {v}' for k, v in sorted(row['false_by_trajectory'].items())) or '–'}")
    if participants:
        lines.append(f"({participants:,} participants)")
    return "\n".join(lines)
