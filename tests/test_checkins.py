"""Check-in analytics: planted situations through a real model give alerts exactly where planted;
episodes, privacy suppression, bad rows, and an endpoint that fails twice then answers."""

from __future__ import annotations

import csv
import json
import threading
import urllib.request
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import numpy as np
import pytest
from conftest import SAMPLE, sample_split

from checkins.alerts import AlertSettings, episodes
from checkins.generator import TRAJECTORIES, Pools, Shape, generate
from checkins.http import Retry
from checkins.output import write_all
from checkins.pipeline import analyse
from checkins.readers import read_rows
from checkins.scoring import EndpointScorer, ModelScorer

START = date(2024, 1, 1)
DAYS = 80


@pytest.fixture(scope="module")
def scorer(fasttext_tree) -> ModelScorer:
    return ModelScorer(fasttext_tree.model_dir)


@pytest.fixture(scope="module")
def pools(scorer) -> Pools:
    """Texts of the sample's training split, sorted by what the real model makes of them: clearly
    positive, negative but below the crisis threshold, and confidently negative (the crisis pool).
    The planted truth is then what the model will read (none unrecognized: the fixture's threshold
    varies from run to run), so every alert can be checked exactly."""
    rows = [line.split(" ", 1) for lines in sample_split().values() for line in lines]
    verdicts = scorer.score([text for _, text in rows])
    picked: dict[str, list[str]] = {"positive": [], "negative": [], "crisis": []}
    clear = max(0.8, scorer.threshold)
    for (label, text), verdict in zip(rows, verdicts):
        if label.endswith(verdict.sentiment) and verdict.sentiment == "positive" and verdict.confidence >= clear:
            picked["positive"].append(text)
        elif label.endswith(verdict.sentiment) and verdict.sentiment == "negative":
            if scorer.threshold <= verdict.confidence < 0.85:
                picked["negative"].append(text)
            elif verdict.confidence >= 0.97:
                picked["crisis"].append(text)
    assert all(len(texts) >= 20 for texts in picked.values()), {k: len(v) for k, v in picked.items()}
    return Pools(**picked)


@pytest.fixture(scope="module")
def planted_run(tmp_path_factory, pools, scorer):
    folder = tmp_path_factory.mktemp("planted")
    source, truth = folder / "checkins.csv", folder / "truth.jsonl"
    # Two of each trajectory in the big group, one of each in a group too small to be shown.
    planted = generate(source, truth, pools, [("team", 10), ("pair", 5)], DAYS, START, seed=3,
                       shape=Shape(steady=1.0, low=0.0), trajectories=TRAJECTORIES)
    analysis = analyse(source, scorer, AlertSettings(), min_group=6)
    write_all(analysis, folder / "out")
    return planted, analysis, folder / "out"


def test_alerts_exactly_where_planted_and_nowhere_else(planted_run):
    planted, analysis, _ = planted_run
    assert {p.trajectory for p in planted} == set(TRAJECTORIES) - {"steady"}
    expected = {(p.participant, p.rule): p for p in planted}
    raised = [(r["participant"], r["rule"]) for r in analysis.records]
    assert sorted(raised) == sorted(expected), "one alert per planted situation, none elsewhere"
    for record in analysis.records:
        situation = expected[record["participant"], record["rule"]]
        assert situation.start <= record["raised"] <= situation.end, (record, situation)
    crisis = [r for r in analysis.records if r["rule"] == "crisis"]
    assert all(r["raised"] == expected[r["participant"], "crisis"].start for r in crisis)
    assert all(m["sentiment"] == "negative" and m["confidence"] >= 0.9 for r in crisis for m in r["messages"])
    assert all(r["messages"] and all(m["message"] for m in r["messages"]) for r in analysis.records)


def test_an_episode_is_raised_once(planted_run):
    _, analysis, _ = planted_run
    # Declining participants stay low for weeks after the alert: still one alert each.
    declining = [r for r in analysis.records if r["rule"] == "negative_days" and r["ongoing"]]
    assert declining and all(r["last_day"] > r["raised"] for r in declining)
    flicker = np.zeros((2, 40), bool)
    flicker[0, [3, 4, 8, 9, 12]] = True      # gaps of 3 and 2 days: one episode
    flicker[1, [3, 4, 20, 21]] = True        # a gap of 15 days: two
    assert episodes(flicker, rearm_days=7) == [(0, 3, 12), (1, 3, 4), (1, 20, 21)]


def test_small_groups_are_suppressed(planted_run):
    _, analysis, out = planted_run
    groups = dict(zip(analysis.checkins.groups, analysis.shown_groups))
    assert groups == {"team": True, "pair": False}
    with (out / "series.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert {r["group"] for r in rows if r["level"] == "group"} == {"team"}
    assert {r["group"] for r in rows if r["level"] == "participant"} == {"team", "pair"}, \
        "participants' own series stay: their manager sees them"
    team = [r for r in rows if r["level"] == "group" and r["check_ins"] != "0"]
    assert len(team) == DAYS and all(r["rolling_7day_mean"] for r in team)


def test_series_figures(tmp_path, scorer):
    source = tmp_path / "c.jsonl"
    lines = [{"participant": "ann", "group": "g", "time": f"2024-05-0{d}T09:00:00+02:00", "message": "m"}
             for d in (1, 1, 2, 4)]
    source.write_text("".join(json.dumps({**line, "SageMakerOutput": answer}) + "\n" for line, answer in zip(lines, [
        {"label": ["__label__positive"], "prob": [0.9], "sentiment": "positive", "confidence": 0.9},
        {"label": ["__label__negative"], "prob": [0.6], "sentiment": "negative", "confidence": 0.6},
        {"label": ["__label__negative"], "prob": [0.55], "sentiment": "unrecognized", "confidence": 0.55},
        {"label": ["__label__positive"], "prob": [0.8], "sentiment": "positive", "confidence": 0.8}])))
    analysis = analyse(source, None, AlertSettings(), min_group=1)
    write_all(analysis, tmp_path / "out")
    with (tmp_path / "out/series.csv").open() as file:
        rows = [r for r in csv.DictReader(file) if r["level"] == "participant"]
    assert [(r["date"], r["check_ins"], r["unrecognized"], r["share_positive"], r["mean_signed_confidence"],
             r["rolling_7day_mean"]) for r in rows] == [
        ("2024-05-01", "2", "0", "0.5000", "0.1500", "0.1500"),
        ("2024-05-02", "1", "1", "", "", "0.1500"),   # unrecognized is counted, not guessed
        ("2024-05-03", "0", "0", "", "", "0.1500"),
        ("2024-05-04", "1", "0", "1.0000", "0.8000", "0.3667")]


def test_bad_rows_are_reported_with_their_lines(tmp_path):
    source = tmp_path / "c.csv"
    source.write_text(
        "participant,group,time,message\n"
        "ann,g,2024-01-01T08:00:00,fine\n"
        "bob,g,yesterday,fine\n"                       # 3: bad time
        'cat,g,2024-01-01,"two\nlines"\n'               # 4-5: a quoted newline is one row
        "dan,g,2024-01-01\n"                            # 6: too few fields
        "eve,,2024-01-01,hello\n"                       # 7: no group
        "fay,g,2024-01-02 10:00:00Z,good\n")
    bad: list = []
    rows = list(read_rows(source, bad))
    assert [(r.line, r.participant) for r in rows] == [(2, "ann"), (4, "cat"), (8, "fay")]
    assert [(b.line, b.reason.split(" ")[0]) for b in bad] == [(3, "time"), (6, "3"), (7, "no")]
    jsonl = tmp_path / "c.jsonl"
    jsonl.write_text('{"participant": "a", "group": "g", "time": "2024-01-01", "message": "x"}\n'
                     "{not json\n"
                     '["a list"]\n'
                     '{"participant": "a", "group": "g", "time": "2024-01-01", "source": "y", '
                     '"SageMakerOutput": {"label": ["__label__negative"], "prob": [0.4]}}\n')
    bad = []
    rows = list(read_rows(jsonl, bad, threshold=0.5))
    assert [(r.line, r.message, r.verdict) for r in rows] == [(1, "x", None), (4, "y", ("unrecognized", 0.4))]
    assert [b.line for b in bad] == [2, 3]


class _Flaky(BaseHTTPRequestHandler):
    """Answers 503 to the first `failures` POSTs, then forwards to the real `serve` behind it."""

    failures = 2
    seen: ClassVar[list[int]] = []
    upstream = ""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.seen.append(len(body))
        if len(self.seen) <= self.failures:
            self.send_response(503)
            self.end_headers()
            self.wfile.write(b'{"error": "warming up"}')
            return
        request = urllib.request.Request(self.upstream, data=body, headers=dict(self.headers), method="POST")
        with urllib.request.urlopen(request, timeout=30) as answer:
            payload = answer.read()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args) -> None:
        pass


def test_endpoint_that_fails_twice_then_answers(fasttext_tree, start_server, scorer):
    serve = start_server(fasttext_tree.model_dir)
    _Flaky.seen, _Flaky.upstream = [], serve.url + "/invocations"
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        texts = [line.split(" ", 1)[1] for line in SAMPLE.read_text().splitlines()[:7]]
        remote = EndpointScorer(f"http://127.0.0.1:{proxy.server_port}", batch_size=3,
                                retry=Retry(attempts=3, backoff=0.01))
        verdicts = remote.score(texts)
    finally:
        proxy.shutdown()
        proxy.server_close()
    assert len(_Flaky.seen) == 2 + 3, "two failures, then three batches of at most 3"
    assert [v.sentiment for v in verdicts] == [v.sentiment for v in scorer.score(texts)]
    assert all(abs(a.confidence - b.confidence) < 1e-5 for a, b in zip(verdicts, scorer.score(texts)))
