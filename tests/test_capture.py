"""The capture store under failure: every message is written or counted as dropped, never lost silently."""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from conftest import ROOT
from support import moto_server

from container.capture import CaptureStore


def captured(folder: Path) -> list[dict]:
    lines = []
    for path in sorted(folder.glob("unrecognized-*.jsonl")):
        text = path.read_text(encoding="utf-8")
        assert not text or text.endswith("\n"), f"torn line in {path.name}"
        lines += [json.loads(line) for line in text.splitlines()]
    return lines


def test_a_lone_surrogate_is_written_escaped_and_the_writer_goes_on(tmp_path):
    store = CaptureStore(str(tmp_path))
    store.put([{"source": "\ud800 broken"}, {"source": "café"}])
    store.put([{"source": "after"}])
    store.close()
    assert [line["source"] for line in captured(tmp_path)] == ["\ud800 broken", "café", "after"]
    assert (store.written, store.dropped) == (3, 0)


FULL_DISK = """
import json, resource, signal, sys, time
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG, as on a full disk
resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))
from container.capture import CaptureStore
store = CaptureStore(sys.argv[1])
for batch in range(10):
    store.put([{"source": f"message {batch}-{i} " + "x" * 200} for i in range(30)])
    time.sleep(0.1)
store.close()
print(json.dumps({"written": store.written, "dropped": store.dropped}))
"""


def test_a_full_disk_tears_no_line_and_counts_every_drop(tmp_path):
    result = subprocess.run([sys.executable, "-c", FULL_DISK, str(tmp_path / "captures")], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    counts = json.loads(result.stdout)
    lines = captured(tmp_path / "captures")
    assert counts["written"] + counts["dropped"] == 300
    assert 0 < counts["written"] == len(lines) < 300
    assert len(list((tmp_path / "captures").iterdir())) <= 2  # no trail of empty files
    assert "dropped" in result.stderr and f"{counts['written']} unrecognized messages written" in result.stderr


@pytest.fixture
def spool(tmp_path, monkeypatch) -> Path:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where an S3 store spools
    return tmp_path / "sentiment-capture-spool"


def aws(monkeypatch, endpoint: str) -> None:
    for name, value in {"AWS_ENDPOINT_URL_S3": endpoint, "AWS_ACCESS_KEY_ID": "test",
                        "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)


def test_an_s3_endpoint_that_never_answers_delays_stop_by_seconds_and_keeps_the_file(spool, monkeypatch, caplog):
    with socket.socket() as silent:  # accepts connections (the kernel's backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        aws(monkeypatch, f"http://127.0.0.1:{silent.getsockname()[1]}")
        store = CaptureStore("s3://captures/prefix")
        store.put([{"source": "kept for later"}])
        started = time.monotonic()
        with caplog.at_level(logging.INFO, logger="container.capture"):
            store.close(timeout=15)
        assert time.monotonic() - started < 15
    assert "failed" in caplog.text and "1 spool files not uploaded yet" in caplog.text
    assert [line["source"] for line in captured(spool)] == ["kept for later"]


@pytest.fixture
def local_s3(monkeypatch):
    pytest.importorskip("moto")
    import boto3

    with moto_server(monkeypatch, lambda: boto3.client("s3").create_bucket(Bucket="captures")):
        yield boto3.client("s3")


def test_spool_files_left_by_a_dead_worker_are_uploaded(spool, local_s3):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    orphan = spool / f"unrecognized-20260101T000000-host-{int(dead.stdout)}-1.jsonl"
    spool.mkdir(parents=True)
    orphan.write_text(json.dumps({"source": "left behind"}) + "\n")
    store = CaptureStore("s3://captures/prefix")
    store.put([{"source": "new"}])
    store.close()
    keys = [obj["Key"] for obj in local_s3.list_objects_v2(Bucket="captures").get("Contents", [])]
    assert f"prefix/{orphan.name}" in keys and len(keys) == 2
    assert not list(spool.glob("*.jsonl"))
