"""Unrecognized messages: threshold choice, the verdict in answers, capture under load, S3, retraining."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from conftest import FAST_FASTTEXT, ROOT, sample_split, trained_tree
from support import free_port, wait_until

from model import predictor
from model.threshold import choose_threshold, coverage

AMBIGUOUS = ["it was a film", "the movie", "some scenes", "an actor", "the end", "i saw it"]
CLEAR = ["a wonderful , moving and funny film", "a dull , tedious and boring mess"]


def test_threshold_is_the_lowest_reaching_the_accuracy_target():
    confidences = [0.51, 0.55, 0.6, 0.7, 0.8, 0.9, 0.95, 0.97, 0.99, 1.0]
    correct = [False, False, False, True, True, True, True, True, True, True]
    chosen = choose_threshold(confidences, correct, threshold_accuracy=0.9, max_unrecognized=0.5)
    assert chosen["value"] == 0.7
    assert chosen["unrecognized_share"] == pytest.approx(0.3)
    assert chosen["accuracy_recognized"] == 1.0


def test_threshold_never_rejects_more_than_max_unrecognized():
    confidences = [0.51, 0.55, 0.6, 0.7, 0.8, 0.9, 0.95, 0.97, 0.99, 1.0]
    correct = [False, False, False, True, True, True, True, True, True, True]
    assert choose_threshold(confidences, correct, 0.9, 0.15)["value"] == 0.55
    assert choose_threshold(confidences, correct, 0.5, 0.15)["value"] == 0.0  # 70 % is already enough


def test_threshold_ties_accept_equal_confidences():
    chosen = choose_threshold([0.6, 0.6, 0.9], [False, True, True], 0.99, 1.0)
    assert chosen["value"] == 0.9
    assert coverage([0.6, 0.6, 0.9], [False, True, True], 0.6)["unrecognized_share"] == 0


@pytest.fixture(scope="module")
def calibrated_tree(tmp_path_factory):
    """fastText on the sample with a validation channel, so a threshold is chosen."""
    return trained_tree(tmp_path_factory, {**FAST_FASTTEXT, "max_unrecognized": "0.3"})


def test_training_records_the_threshold_and_reports_coverage(calibrated_tree):
    tree = calibrated_tree
    stdout = tree.training_log
    manifest = json.loads((tree.model_dir / "manifest.json").read_text())
    chosen = manifest["threshold"]
    assert 0.5 < chosen["value"] < 1
    assert chosen["rule"] == {"threshold_accuracy": 0.9, "max_unrecognized": 0.3}
    assert 0 < chosen["unrecognized_share"] <= 0.3
    assert "unrecognized threshold=" in stdout
    assert "test:unrecognized_share=" in stdout and "test:accuracy_recognized=" in stdout
    metrics = json.loads((tree.output_dir / "data/metrics.json").read_text())
    assert metrics["test"]["accuracy_recognized"] > metrics["test"]["accuracy"]


def verdicts(server, texts, attributes=None) -> list[dict]:
    response = server.post(json.dumps(texts), attributes=attributes)
    assert response.status_code == 200, response.text
    return response.json()


def assert_verdicts_follow(answers: list[dict], threshold: float) -> None:
    for answer in answers:
        label = answer["label"][0].removeprefix("__label__")
        assert answer["sentiment"] == (label if answer["confidence"] >= threshold else "unrecognized"), answer


def test_threshold_precedence_request_over_environment_over_manifest(calibrated_tree, start_server):
    tree = calibrated_tree
    recorded = json.loads((tree.model_dir / "manifest.json").read_text())["threshold"]["value"]
    texts = AMBIGUOUS + CLEAR
    server = start_server(tree.model_dir)
    answers = verdicts(server, texts)
    assert_verdicts_follow(answers, recorded)
    assert {a["sentiment"] for a in answers} == {"positive", "negative", "unrecognized"}
    assert_verdicts_follow(verdicts(server, texts, "threshold=0"), 0)
    assert_verdicts_follow(verdicts(server, texts, "threshold=0.95"), 0.95)
    assert server.post(json.dumps(CLEAR), attributes="threshold=2").status_code == 400

    overridden = start_server(tree.model_dir, {"SENTIMENT_THRESHOLD": "0.99"})
    assert_verdicts_follow(verdicts(overridden, texts), 0.99)
    assert_verdicts_follow(verdicts(overridden, texts, "threshold=0.1"), 0.1)


def captured_lines(folder: Path) -> list[dict]:
    lines = []
    for path in sorted(folder.glob("unrecognized-*.jsonl")):
        text = path.read_text(encoding="utf-8")
        assert text.endswith("\n")
        lines += [json.loads(line) for line in text.splitlines()]
    return lines


def test_capture_under_concurrent_load_through_two_workers_loses_and_tears_nothing(calibrated_tree, start_server,
                                                                                   tmp_path):
    tree = calibrated_tree
    capture = tmp_path / "captures"
    server = start_server(tree.model_dir, {"SENTIMENT_CAPTURE_URI": str(capture), "SAGEMAKER_MODEL_SERVER_WORKERS": "2",
                                           "SENTIMENT_CAPTURE_MAX_BYTES": "2000", "SENTIMENT_THRESHOLD": "0.8"})
    texts = [line.split(" ", 1)[1] for line in sample_split()["test"]][:300] + AMBIGUOUS * 5

    def call(start: int) -> list[tuple[str, str, str]]:
        batch = texts[start:start + 10]
        response = requests.post(server.url + "/invocations", json={"instances": batch}, timeout=30)
        assert response.status_code == 200
        request_id = response.headers["X-Request-Id"]
        return [(text, a["sentiment"], request_id) for text, a in zip(batch, response.json())]

    def writers() -> set[str]:
        return {path.name.split("-")[-2] for path in capture.glob("*.jsonl")}  # the pid in each file name

    answers = []
    with ThreadPoolExecutor(16) as pool:
        # The kernel may hand one worker every connection of a round: go on (a bounded number
        # of rounds) until both workers have written, so that their files are both checked.
        for _ in range(10):
            answers += [row for rows in pool.map(call, range(0, len(texts), 10)) for row in rows]
            if wait_until(lambda: len(writers()) == 2, seconds=2):
                break
    unrecognized = sorted((text, rid) for text, verdict, rid in answers if verdict == "unrecognized")
    assert len(unrecognized) > 20
    assert server.stop() == 0  # SIGTERM: each worker writes what it has queued
    lines = captured_lines(capture)
    assert sorted((line["source"], line["request_id"]) for line in lines) == unrecognized
    assert len(list(capture.glob("*.jsonl"))) >= 3  # rotated by size, and one file per worker
    assert len(writers()) == 2  # both workers wrote, each to its own files
    totals = re.findall(r"capture: (\d+) unrecognized messages written, (\d+) dropped", server.log())
    assert len(totals) == 2  # each worker logs its totals as it stops
    assert sum(int(written) + int(dropped) for written, dropped in totals) == len(unrecognized)
    first = lines[0]
    assert set(first) == {"source", "guess", "confidence", "probs", "threshold", "model_version", "time",
                          "request_id"}
    assert set(first["probs"]) == {"positive", "negative"} and first["threshold"] == 0.8

    # The captures feed the review command as they are: label three, quit.
    review = subprocess.run([sys.executable, "-m", "model.review", str(capture), "--feedback", str(tmp_path / "fb")],
                            input="p\nn\np\nq\n", capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert review.returncode == 0, review.stderr
    labelled = (tmp_path / "fb/feedback.txt").read_text().splitlines()
    assert [line.split(" ", 1)[0] for line in labelled] == ["__label__positive", "__label__negative",
                                                            "__label__positive"]


def test_a_store_that_is_down_never_fails_a_request(calibrated_tree, start_server, tmp_path):
    tree = calibrated_tree
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the capture folder should be")
    server = start_server(tree.model_dir, {"SENTIMENT_CAPTURE_URI": str(blocker / "captures"),
                                           "SENTIMENT_THRESHOLD": "1"})
    for _ in range(20):
        assert server.post(json.dumps(AMBIGUOUS)).status_code == 200
    assert wait_until(lambda: "capture: dropped" in server.log(), seconds=10), server.log()


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on {port}")


def test_a_request_threshold_changes_its_answers_but_not_what_is_captured(calibrated_tree, start_server, tmp_path):
    tree = calibrated_tree
    capture = tmp_path / "captures"
    server = start_server(tree.model_dir, {"SENTIMENT_CAPTURE_URI": str(capture), "SENTIMENT_THRESHOLD": "0"})
    answers = verdicts(server, AMBIGUOUS * 10, "threshold=1")
    assert sum(a["sentiment"] == "unrecognized" for a in answers) >= len(answers) // 2
    assert server.stop() == 0
    assert captured_lines(capture) == []  # nothing is below the server's threshold of 0


def test_capture_to_s3_on_a_local_s3_server(calibrated_tree, start_server, tmp_path, monkeypatch):
    pytest.importorskip("moto")
    import boto3

    port = free_port()
    s3_server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        aws = {"AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "test",
               "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}
        for name, value in aws.items():
            monkeypatch.setenv(name, value)
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="captures")
        tree = calibrated_tree
        server = start_server(tree.model_dir, {**aws, "SENTIMENT_CAPTURE_URI": "s3://captures/unrecognized/v1",
                                               "TMPDIR": str(tmp_path), "SENTIMENT_THRESHOLD": "1"})
        answers = verdicts(server, AMBIGUOUS)
        assert server.stop() == 0
        objects = s3.list_objects_v2(Bucket="captures", Prefix="unrecognized/v1/").get("Contents", [])
        assert objects
        lines = [json.loads(line) for obj in objects
                 for line in s3.get_object(Bucket="captures", Key=obj["Key"])["Body"].read().decode().splitlines()]
        assert sorted(line["source"] for line in lines) == sorted(
            t for t, a in zip(AMBIGUOUS, answers) if a["sentiment"] == "unrecognized")
    finally:
        s3_server.terminate()
        s3_server.wait(10)


def test_retraining_with_feedback_flips_those_messages_and_compares_with_the_previous_model(calibrated_tree, tmp_path):
    tree = calibrated_tree
    old = predictor.load(tree.model_dir)
    messages = ["my therapist session went okay i guess", "work was work", "had lunch with the team",
                "the new schedule starts monday", "called my sister", "rain again", "long meeting today",
                "finished the report", "slept eight hours", "went for a walk after dinner"]
    guesses = [p.labels[0] for p in old.predict(messages)]
    flipped = ["negative" if g == "positive" else "positive" for g in guesses]
    feedback = tmp_path / "feedback"
    feedback.mkdir()
    (feedback / "feedback.txt").write_text("".join(f"__label__{label} {text}\n"
                                                   for label, text in zip(flipped, messages)))
    split = sample_split()
    (tmp_path / "train.txt").write_text("\n".join(split["train"]) + "\n")
    (tmp_path / "validation.txt").write_text("\n".join(split["validation"]) + "\n")
    flags = ["--train", "train.txt", "--validation", "validation.txt", "--feedback", "feedback",
             "--previous", str(tree.model_dir), "--model-dir", "new", "--output-dir", "out"]
    for name, value in FAST_FASTTEXT.items():
        flags += ["-p", f"{name}={value}"]
    result = subprocess.run([sys.executable, str(ROOT / "train"), *flags], cwd=tmp_path, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "channel feedback: 10 rows" in result.stdout
    assert "previous model (measured on the same data) -> new model:" in result.stdout
    assert "validation:accuracy " in result.stdout
    new = predictor.load(tmp_path / "new")
    now = [p.labels[0] for p in new.predict(messages)]
    assert sum(a == b for a, b in zip(now, flipped)) >= 8, (guesses, now)
    manifest = json.loads((tmp_path / "new/manifest.json").read_text())
    assert manifest["data"]["feedback"]["rows"] == 10
    assert manifest["hyperparameters"]["feedback_weight"] == 3
