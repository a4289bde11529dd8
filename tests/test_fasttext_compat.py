"""BlazingText compatibility both ways, with the real fastText: Debian's original CLI
(skipped where it is not installed; CI installs it) and fastText's Python API."""

from __future__ import annotations

import json
import shutil
import subprocess

import fasttext
import pytest
from conftest import fasttext_api, sample_split

from model.preprocessing import clean_text

needs_cli = pytest.mark.skipif(shutil.which("fasttext") is None, reason="needs the fasttext CLI (apt install fasttext)")


def texts_and_labels(channel: str) -> tuple[list[str], list[str]]:
    rows = [line.split(" ", 1) for line in sample_split()[channel]]
    return [text for _, text in rows], [label for label, _ in rows]


@needs_cli
def test_a_model_trained_by_the_fasttext_cli_is_served_like_blazingtext(tmp_path, start_server):
    """BlazingText's artifact is a bare model.bin; its users tokenize text themselves."""
    train_file = tmp_path / "train.txt"
    train_file.write_text("\n".join(sample_split()["train"]) + "\n")
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    subprocess.run(["fasttext", "supervised", "-input", str(train_file), "-output", str(model_dir / "model"),
                    "-epoch", "10", "-lr", "0.3", "-wordNgrams", "2", "-bucket", "100000", "-verbose", "0"],
                   check=True, timeout=300)
    (model_dir / "model.vec").unlink(missing_ok=True)
    texts, truth = texts_and_labels("test")
    cli = subprocess.run(["fasttext", "predict-prob", str(model_dir / "model.bin"), "-", "1"],
                         input="\n".join(texts) + "\n", capture_output=True, text=True, check=True)
    cli_labels = [line.split()[0] for line in cli.stdout.splitlines()]

    server = start_server(model_dir)
    records = server.post(json.dumps({"instances": texts})).json()
    assert [r["label"][0] for r in records] == cli_labels
    assert sum(label == t for label, t in zip(cli_labels, truth)) / len(truth) > 0.7


@needs_cli
def test_our_model_bin_is_read_by_the_fasttext_cli(fasttext_tree):
    texts, _ = texts_and_labels("test")
    texts = texts[:200]
    model_file = fasttext_tree.model_dir / "model.bin"
    cli = subprocess.run(["fasttext", "predict-prob", str(model_file), "-", "1"],
                         input="".join(clean_text(t) + "\n" for t in texts), capture_output=True, text=True,
                         check=True)
    ours = fasttext.load_model(str(model_file)).predict([clean_text(t) for t in texts])
    cli_rows = [line.split() for line in cli.stdout.splitlines()]
    assert [row[0] for row in cli_rows] == [labels[0] for labels in ours[0]]
    assert [float(row[1]) for row in cli_rows] == pytest.approx([min(1.0, p[0]) for p in ours[1]], abs=1e-4)


def test_a_model_trained_by_fasttexts_python_api_is_served(tmp_path, start_server):
    train_file = tmp_path / "train.txt"
    train_file.write_text("\n".join(sample_split()["train"]) + "\n")
    model = fasttext_api(fasttext.train_supervised, str(train_file), epoch=10, lr=0.3, bucket=100000, wordNgrams=2,
                         verbose=0)
    (tmp_path / "model").mkdir()
    model.save_model(str(tmp_path / "model/model.bin"))
    texts, _ = texts_and_labels("test")
    server = start_server(tmp_path / "model")
    records = server.post(json.dumps({"instances": texts[:100], "configuration": {"k": 2}})).json()
    expected = model.predict(texts[:100], k=2)
    assert [r["label"] for r in records] == [list(labels) for labels in expected[0]]
    assert [r["prob"][0] for r in records] == pytest.approx([min(1.0, p[0]) for p in expected[1]], abs=1e-5)


def test_a_word_vector_model_is_refused_with_a_reason(tmp_path, start_server):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(line.split(" ", 1)[1] for line in sample_split()["train"][:2000]) + "\n")
    model = fasttext_api(fasttext.train_unsupervised, str(corpus), epoch=1, dim=10, verbose=0)
    (tmp_path / "model").mkdir()
    model.save_model(str(tmp_path / "model/model.bin"))
    server = start_server(tmp_path / "model", healthy=False)
    assert server.process.wait(timeout=30) != 0
    assert "not a classifier" in server.log()
