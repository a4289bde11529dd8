"""The report folder made by the real command, its page rendered in headless chromium, and alerts
notified to a webhook and to SNS (moto's local server)."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from conftest import ROOT
from support import moto_server

from checkins.notify import notify

SAMPLE = ROOT / "data/checkins/checkins.csv"


@pytest.fixture(scope="module")
def report(fasttext_tree, tmp_path_factory) -> Path:
    """`python -m checkins report` on the bundled sample with the real fastText fixture."""
    out = tmp_path_factory.mktemp("report") / "out"
    result = subprocess.run([sys.executable, "-m", "checkins", "report", str(SAMPLE), "--model-dir",
                             str(fasttext_tree.model_dir), "--out", str(out)], cwd=ROOT, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 bad rows" in result.stdout and "line 1258" in result.stderr
    return out


def test_the_folder_holds_every_output(report):
    names = {p.name for p in report.iterdir()} | {f"charts/{p.name}" for p in (report / "charts").iterdir()}
    assert {"series.csv", "alerts.jsonl", "alerts.csv", "bad-rows.csv", "report.html"} <= names
    assert {"charts/group-0.png", "charts/group-1.png"} <= names and "charts/group-2.png" not in names, \
        "team-c has 3 participants: no group chart"
    assert sum(name.startswith("charts/participant-") for name in names) == 19
    alerts = [json.loads(line) for line in (report / "alerts.jsonl").open()]
    with (report / "alerts.csv").open() as file:
        assert [row["id"] for row in csv.DictReader(file)] == [a["id"] for a in alerts]
    assert {a["rule"] for a in alerts} == {"crisis", "negative_days", "drop", "silence"}
    with (report / "bad-rows.csv").open() as file:
        assert [row["line"] for row in csv.DictReader(file)] == ["1258", "1259"]


def test_the_page_renders_in_headless_chromium(report, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("needs Debian's chromium (apt-get install -y chromium) to render report.html")
    page = (report / "report.html").as_uri()
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--user-data-dir={tmp_path}"]
    dom = subprocess.run([*flags, "--dump-dom", page], capture_output=True, text=True, timeout=60).stdout
    for text in ("Needs attention first", "team-c (3 participants)", "Crisis message", "Bad rows", "last tuesday"):
        assert text in dom, text
    shot = tmp_path / "report.png"
    subprocess.run([*flags, f"--screenshot={shot}", "--window-size=1200,2200", page], capture_output=True,
                   timeout=60, check=True)
    from matplotlib.image import imread

    pixels = (imread(shot)[..., :3] * 255).round().astype(int)
    def has(colour: str) -> bool:
        return bool((np.abs(pixels - [int(colour[i:i + 2], 16) for i in (1, 3, 5)]).sum(axis=2) <= 6).any())
    assert has("#b30000"), "the crisis badge's red: the page's style applied"
    assert has("#000000"), "a chart's black group line (the page's text is #222): the PNGs loaded"


class _Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[dict]] = []

    def do_POST(self) -> None:
        self.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def _alerts(report: Path) -> list[dict]:
    return [json.loads(line) for line in (report / "alerts.jsonl").open()]


def test_webhook_gets_each_new_alert_once(report, tmp_path):
    _Hook.received = []
    hook = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    alerts, state = _alerts(report), tmp_path / "notified.json"
    try:
        url = f"http://127.0.0.1:{hook.server_port}/alerts"
        first = notify(alerts[:3], [url], state)
        again = notify(alerts, [url], state)
    finally:
        hook.shutdown()
        hook.server_close()
    urgent = [a["id"] for a in alerts if a["needs_attention"]]
    assert first + again == len(urgent) and [r["id"] for r in _Hook.received] == urgent
    assert notify(alerts, [url], state) == 0, "nothing new: nothing sent (and no server needed)"


@pytest.fixture
def local_aws(monkeypatch):
    pytest.importorskip("moto")
    import boto3

    with moto_server(monkeypatch, lambda: boto3.client("sns").list_topics()):
        yield boto3.client("sns"), boto3.client("sqs")


def test_sns_topic_gets_each_new_alert(report, tmp_path, local_aws):
    sns, sqs = local_aws
    topic = sns.create_topic(Name="checkin-alerts")["TopicArn"]
    queue = sqs.create_queue(QueueName="managers")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
    alerts = _alerts(report)
    sent = notify(alerts, [f"sns:{topic}"], tmp_path / "notified.json")
    received = []
    while batch := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
        received += [json.loads(m["Body"]) for m in batch]
        sqs.delete_message_batch(QueueUrl=queue, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                                                         for i, m in enumerate(batch)])
    assert sent == len(received) == sum(a["needs_attention"] for a in alerts) > 0
    assert {r["id"] for r in received} == {a["id"] for a in alerts if a["needs_attention"]}
    assert all(r["messages"] for r in received)
