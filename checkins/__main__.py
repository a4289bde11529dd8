"""`python -m checkins report|generate|evaluate`: the command line (docs/checkins.md has examples)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date
from pathlib import Path

from checkins.alerts import AlertSettings, setting_fields
from checkins.http import Retry


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m checkins", description=__doc__.split(":")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    _report_parser(commands.add_parser("report", help="score check-ins and write the report folder"))
    _generate_parser(commands.add_parser("generate", help="demo timelines with planted situations"))
    evaluate = commands.add_parser("evaluate", help="recall and false alerts of a report against the planted truth")
    evaluate.add_argument("alerts", type=Path, help="alerts.jsonl of a report")
    evaluate.add_argument("truth", type=Path, help="the truth file `generate` wrote")
    args = parser.parse_args(argv)
    try:
        return {"report": _report, "generate": _generate, "evaluate": _evaluate}[args.command](args)
    except (ValueError, OSError) as error:
        print(f"checkins: {error}", file=sys.stderr)
        return 1


def _report_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", type=Path, help="check-ins: CSV or JSON lines, or batch transform output")
    model = parser.add_mutually_exclusive_group()
    model.add_argument("--endpoint", metavar="URL", help="a running endpoint (…/invocations)")
    model.add_argument("--model-dir", type=Path, metavar="DIR", help="score in process with this model")
    parser.add_argument("--out", type=Path, default=Path("checkins-report"), help="output folder (checkins-report)")
    parser.add_argument("--min-group", type=int, default=5, help="fewest participants a group needs to be shown (5)")
    parser.add_argument("--threshold", type=float, default=None,
                        help="confidence below which a message is unrecognized (default: the model's own)")
    parser.add_argument("--batch-size", type=int, default=500, help="texts per request to the endpoint (500)")
    parser.add_argument("--retries", type=int, default=5, help="attempts per request before giving up (5)")
    parser.add_argument("--participant-charts", choices=("all", "alerts", "none"), default="all",
                        help="participants given a chart and a section (all)")
    parser.add_argument("--notify", action="append", default=[], metavar="sns:ARN|URL",
                        help="send each new alert to an SNS topic or a webhook (repeatable)")
    parser.add_argument("--notify-state", type=Path, help="ids of alerts already sent (OUT/notified.json)")
    for spec in setting_fields():
        parser.add_argument(f"--{spec.name.replace('_', '-')}", type=type(spec.default), default=spec.default,
                            help=f"{spec.metadata['help']} ({spec.default})")


def _report(args: argparse.Namespace) -> int:
    from checkins.notify import check_target, notify
    from checkins.pipeline import analyse
    from checkins.report import write_report
    from checkins.scoring import EndpointScorer, ModelScorer

    targets = [check_target(target) for target in args.notify]
    settings = AlertSettings(**{spec.name: getattr(args, spec.name) for spec in setting_fields()})
    started = time.monotonic()
    if args.model_dir:
        scorer = ModelScorer(args.model_dir, args.threshold)
    elif args.endpoint:
        scorer = EndpointScorer(args.endpoint, args.batch_size, Retry(attempts=args.retries), args.threshold or 0.0)
    else:
        scorer = None  # fine for batch transform output, which arrives scored
    analysis = analyse(args.input, scorer, settings, args.min_group, args.threshold or 0.0)
    page = write_report(analysis, args.out, args.participant_charts)
    counts = {rule: sum(r["rule"] == rule for r in analysis.records) for rule in ("crisis", "negative_days", "drop",
                                                                                  "silence")}
    print(f"{len(analysis.checkins):,} check-ins of {len(analysis.checkins.names):,} participants; "
          f"{len(analysis.bad_rows):,} bad rows; alerts: {json.dumps(counts)}; "
          f"{sum(r['needs_attention'] for r in analysis.records)} need attention; {time.monotonic() - started:.1f} s")
    for bad in analysis.bad_rows[:10]:
        print(f"  bad row at line {bad.line}: {bad.reason}", file=sys.stderr)
    hidden = [name for name, shown in zip(analysis.checkins.groups, analysis.shown_groups) if not shown]
    if hidden:
        print(f"groups under {args.min_group} participants, not shown: {', '.join(hidden)}")
    if targets:
        sent = notify(analysis.records, targets, args.notify_state or args.out / "notified.json")
        print(f"notified {sent} new alerts to {len(targets)} target(s)")
    print(f"report: {page}")
    return 0


def _generate_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="check-ins CSV to write")
    parser.add_argument("--truth", type=Path, help="planted situations (default: OUT with .truth.jsonl)")
    parser.add_argument("--messages", type=Path, nargs="+", required=True,
                        help="labelled texts (any format model.datasets reads); positive and negative ones are used")
    parser.add_argument("--crisis", type=Path, nargs="+", help="texts for crisis messages (default: the negatives)")
    parser.add_argument("--groups", default="team-a=12,team-b=8,team-c=3", help="NAME=SIZE,… (team-a=12,…)")
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--start", type=date.fromisoformat, default=date(2024, 1, 1))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip", type=float, default=0.02, help="share of days a participant skips (0.02)")
    parser.add_argument("--in-turn", action="store_true",
                        help="give participants the trajectories in turn instead of drawing them")


def _generate(args: argparse.Namespace) -> int:
    from checkins.generator import TRAJECTORIES, Pools, Shape, generate
    from model.datasets import read_path

    examples, _ = read_path(*args.messages)
    positive = [e.text for e in examples if e.label == "positive"]
    negative = [e.text for e in examples if e.label == "negative"]
    crisis = [e.text for e in read_path(*args.crisis)[0] if e.label == "negative"] if args.crisis else negative
    groups = [(name, int(size)) for name, size in (item.split("=") for item in args.groups.split(","))]
    truth = args.truth or args.out.with_suffix(".truth.jsonl")
    planted = generate(args.out, truth, Pools(positive, negative, crisis), groups, args.days, args.start, args.seed,
                       shape=Shape(skip=args.skip), trajectories=TRAJECTORIES if args.in_turn else None)
    print(f"{args.out}: {sum(size for _, size in groups)} participants × {args.days} days; "
          f"{len(planted)} planted situations in {truth}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from checkins.evaluate import evaluate, format_table
    from checkins.generator import read_truth

    with args.alerts.open(encoding="utf-8") as file:
        records = [json.loads(line) for line in file if line.strip()]
    print(format_table(evaluate(records, read_truth(args.truth))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
