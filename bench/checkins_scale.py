"""Check-in analytics at scale and on real text: 10,000 participants × 365 days through the in-process
model, printing the report's wall time and peak memory (targets: < 10 min, < 2 GB), then how many
planted situations each alert rule caught (recall and false alerts per rule).

    .venv/bin/python bench/checkins_scale.py [--participants 10000] [--days 365] [--model-dir DIR]

The model is trained (fastText, BlazingText's defaults, quantized) on Sentiment140's 110k part with
SemEval-2013 dev as validation (for the unrecognized threshold); the timelines draw their messages
from SemEval-2016 test, which the model never saw, so its own mistakes are in play. The report runs
as a child process (`python -m checkins report … --participant-charts none`), whose peak RSS is read
with wait4; participant charts are left out (see docs/checkins.md for their cost).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from common import DATA, POLAR, ROOT, run_train

from checkins.evaluate import evaluate, format_table
from checkins.generator import Pools, Shape, generate, read_truth
from model.datasets import filter_labels, read_path, write_blazingtext


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--participants", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--model-dir", type=Path, help="use this model instead of training one")
    parser.add_argument("--work", type=Path, help="keep the files here (default: a temporary folder)")
    args = parser.parse_args()
    if not (DATA / "semeval2013-2016").exists():
        sys.exit(f"needs {DATA}")
    with tempfile.TemporaryDirectory() as temporary:
        work = args.work or Path(temporary)
        work.mkdir(parents=True, exist_ok=True)
        model_dir = args.model_dir or _train(work)
        source, truth = work / "checkins.csv", work / "truth.jsonl"
        examples, _ = read_path(DATA / "semeval2013-2016/twitter-2016test-A.txt")
        pools = Pools([e.text for e in examples if e.label == "positive"],
                      [e.text for e in examples if e.label == "negative"],
                      [e.text for e in examples if e.label == "negative"])
        started = time.monotonic()
        groups = [(f"team-{i:03d}", 20) for i in range(args.participants // 20)]
        planted = generate(source, truth, pools, groups, args.days, date(2024, 1, 1), seed=7, shape=Shape(skip=0.02))
        rows = sum(1 for _ in source.open()) - 1
        print(f"generated {rows:,} check-ins ({source.stat().st_size / 1e6:.0f} MB) of "
              f"{args.participants:,} participants × {args.days} days in {time.monotonic() - started:.0f} s; "
              f"pools: {len(pools.positive):,} positive, {len(pools.negative):,} negative SemEval-2016 test tweets")
        out = work / "report"
        command = [sys.executable, "-m", "checkins", "report", str(source), "--model-dir", str(model_dir),
                   "--out", str(out), "--participant-charts", "none"]
        started = time.monotonic()
        child = subprocess.Popen(command, cwd=ROOT)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.monotonic() - started
        if status:
            sys.exit(f"report failed with status {status}")
        print(f"report: {seconds:.0f} s wall ({rows / seconds:,.0f} check-ins/s), peak memory "
              f"{usage.ru_maxrss / 1024:,.0f} MB (targets: < 600 s, < 2,048 MB)")
        with (out / "alerts.jsonl").open() as file:
            records = [json.loads(line) for line in file]
        print(f"\nplanted situations caught, {len(planted):,} planted (real text, the model's own mistakes):")
        print(format_table(evaluate(records, read_truth(truth)), args.participants))


def _train(work: Path) -> Path:
    validation = work / "validation"
    validation.mkdir(exist_ok=True)
    rows, _ = filter_labels(read_path(DATA / "semeval2013-2016/twitter-2013dev-A.txt")[0], POLAR)
    write_blazingtext(rows, validation / "data.txt")
    channels = {"train": DATA / "sentiment140/training.110k.processed.noemoticon.csv", "validation": validation}
    started = time.monotonic()
    run_train(work, channels, [])
    print(f"trained fastText (BlazingText defaults, quantized) on Sentiment140 110k in "
          f"{time.monotonic() - started:.0f} s")
    return work / "model"


if __name__ == "__main__":
    main()
