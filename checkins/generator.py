"""Demo and test timelines: daily check-ins drawn from labelled messages along planted trajectories.

No real set of daily check-ins exists, so each participant follows a trajectory of how likely a
positive day is, and each day's message is drawn from a pool of labelled texts of that feeling: the
model reads real text while the truth is known. Trajectories (day t of `days`):

- `steady`: positive with probability `steady` every day; nothing to find.
- `declining`: from day s (at least 35 days in, so the baseline exists) the probability falls to
  `low` over 14 days and stays there: planted `drop` and `negative_days` from s on.
- `crisis`: steady, except one message from the crisis pool on day c: planted `crisis` on day c.
- `recovering`: at `low` for the first 14-28 days, then rising to `steady` over 14 days: planted
  `negative_days` until the rise ends, nothing after.
- `silent`: steady until day g, then no check-in at all: planted `silence` from day g+silence_days.

Every day is checked in (except a random `skip` share), at a random time of day, some participants
with a zone offset, some without. The planted truth is written as JSON lines beside the check-ins.
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from pathlib import Path

TRAJECTORIES = ("steady", "declining", "crisis", "recovering", "silent")
PLANTED = {"declining": ("drop", "negative_days"), "crisis": ("crisis",), "recovering": ("negative_days",),
           "silent": ("silence",), "steady": ()}
DECLINE_DAYS, RISE_DAYS = 14, 14


@dataclass(frozen=True)
class Pools:
    """Texts by feeling: what ordinary good and bad days say, and what a crisis says."""

    positive: Sequence[str]
    negative: Sequence[str]
    crisis: Sequence[str]


@dataclass(frozen=True)
class Planted:
    """A situation planted for one participant: alerts of `rule` are expected from `start` to `end`."""

    participant: str
    group: str
    trajectory: str
    rule: str
    start: str
    end: str


@dataclass(frozen=True)
class Shape:
    """How likely a positive day is: the steady level and the low of a bad period; the share of days skipped."""

    steady: float = 0.9
    low: float = 0.1
    skip: float = 0.0
    silence_days: int = 2


def generate(out: Path, truth: Path, pools: Pools, groups: Sequence[tuple[str, int]], days: int, start: date,
             seed: int = 0, mix: dict[str, float] | None = None, shape: Shape | None = None,
             trajectories: Sequence[str] | None = None) -> list[Planted]:
    """Write check-ins (CSV) to `out` and the planted situations (JSON lines) to `truth`.

    Trajectories are drawn with weights `mix` (default: 60 % steady, 10 % each other one), or taken
    in turn from `trajectories` when given (participant i gets trajectories[i % len]).
    """
    if days < 50:
        raise ValueError("timelines need at least 50 days: a decline is planted after a 35-day baseline")
    shape = shape or Shape()
    mix = mix or {"steady": 0.6, **{name: 0.1 for name in TRAJECTORIES[1:]}}
    rng = random.Random(seed)
    planted: list[Planted] = []
    number = 0
    with out.open("w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["participant", "group", "time", "message"])
        for group, size in groups:
            for _ in range(size):
                name = f"p{number:05d}"
                kind = trajectories[number % len(trajectories)] if trajectories else \
                    rng.choices(list(mix), weights=list(mix.values()))[0]
                number += 1
                zone = rng.choice(["", "Z", "+01:00", "-05:00"])
                plan = _plan(kind, days, shape, rng)
                for rule, first, last in plan.planted:
                    planted.append(Planted(name, group, kind, rule, (start + timedelta(first)).isoformat(),
                                           (start + timedelta(last)).isoformat()))
                for t, text in _messages(plan, days, pools, shape, rng):
                    minute = rng.randrange(7 * 60, 22 * 60)
                    time = f"{start + timedelta(t)}T{minute // 60:02d}:{minute % 60:02d}:00{zone}"
                    writer.writerow([name, group, time, text])
    with truth.open("w", encoding="utf-8") as file:
        file.writelines(json.dumps(asdict(p)) + "\n" for p in planted)
    return planted


@dataclass
class _Plan:
    kind: str
    positive_chance: list[float]
    crisis_day: int = -1
    last_day: int = -1
    planted: tuple[tuple[str, int, int], ...] = ()


def _plan(kind: str, days: int, shape: Shape, rng: random.Random) -> _Plan:
    level = [shape.steady] * days
    if kind == "declining":
        s = rng.randrange(35, max(36, days - 21))
        for t in range(s, days):
            level[t] = max(shape.low, shape.steady - (shape.steady - shape.low) * (t - s + 1) / DECLINE_DAYS)
        return _Plan(kind, level, planted=tuple((rule, s, days - 1) for rule in PLANTED[kind]))
    if kind == "crisis":
        c = rng.randrange(7, days - 7)
        return _Plan(kind, level, crisis_day=c, planted=(("crisis", c, c),))
    if kind == "recovering":
        low_days = rng.randrange(14, 29)
        for t in range(low_days + RISE_DAYS):
            rise = max(0, t - low_days + 1) / RISE_DAYS
            level[t] = shape.low + (shape.steady - shape.low) * rise
        return _Plan(kind, level, planted=(("negative_days", 0, low_days + RISE_DAYS),))
    if kind == "silent":
        g = rng.randrange(days // 2, days - shape.silence_days - 1)
        return _Plan(kind, level, last_day=g - 1, planted=(("silence", g + shape.silence_days, days - 1),))
    return _Plan(kind, level)


def _messages(plan: _Plan, days: int, pools: Pools, shape: Shape, rng: random.Random) -> Iterator[tuple[int, str]]:
    for t in range(days):
        if plan.last_day >= 0 and t > plan.last_day:
            return
        if t == plan.crisis_day:
            yield t, rng.choice(pools.crisis)
        elif rng.random() >= shape.skip or t == plan.last_day:
            yield t, rng.choice(pools.positive if rng.random() < plan.positive_chance[t] else pools.negative)


def read_truth(path: Path) -> list[Planted]:
    """The planted situations `generate` wrote."""
    with path.open(encoding="utf-8") as file:
        return [Planted(**json.loads(line)) for line in file if line.strip()]
