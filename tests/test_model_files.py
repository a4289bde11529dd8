"""Broken model files are refused with the reason, never loaded, spun on, or served as healthy."""

from __future__ import annotations

import json
import random
import shutil
import struct
from pathlib import Path

import fasttext
import pytest
from conftest import SAMPLE, fasttext_api

from model.fasttext_format import ModelFileError, check_model_file


@pytest.fixture(scope="module")
def model_files(tmp_path_factory) -> dict[str, Path]:
    """A plain and a quantized fastText model, trained on the bundled sample by fastText's own API."""
    folder = tmp_path_factory.mktemp("fasttext")
    # fastText's API does not shuffle, and the sample is sorted by label.
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()
    random.Random(0).shuffle(lines)
    shuffled = folder / "sample.txt"
    shuffled.write_text("\n".join(lines) + "\n", encoding="utf-8")
    model = fasttext_api(fasttext.train_supervised, str(shuffled), epoch=5, bucket=100_000, wordNgrams=2, thread=2,
                         seed=1, verbose=0)
    model.save_model(str(folder / "plain.bin"))
    model.quantize(input=str(shuffled), qnorm=True, cutoff=1000, dsub=4)
    model.save_model(str(folder / "quantized.bin"))
    return {"plain": folder / "plain.bin", "quantized": folder / "quantized.bin"}


@pytest.mark.parametrize("kind", ["plain", "quantized"])
def test_good_models_pass(model_files, kind):
    fields = check_model_file(model_files[kind])
    assert fields["labels"] == 2 and fields["dim"] == 100 and fields["quantized"] == (kind == "quantized")


def damaged(source: Path, folder: Path, change) -> Path:
    data = bytearray(source.read_bytes())
    target = folder / f"damaged-{source.name}"
    target.write_bytes(change(data))
    return target


WORD_NGRAMS_AT = 8 + 5 * 4  # magic, version, then dim ws epoch minCount neg


@pytest.mark.parametrize("kind", ["plain", "quantized"])
@pytest.mark.parametrize("change, says", [
    (lambda data: data[:1000], "ends inside"),
    (lambda data: data[:len(data) // 2], "needs"),
    (lambda data: data[:-1], "needs"),
    (lambda data: data + b"\0" * 8, "follow the model"),
    (lambda data: data[:WORD_NGRAMS_AT] + struct.pack("<i", 2**31 - 1) + data[WORD_NGRAMS_AT + 4:], "wordNgrams"),
    (lambda data: b"\0" * 8 + data[8:], "header"),
])
def test_damaged_models_are_refused_with_the_reason(model_files, tmp_path, kind, change, says):
    with pytest.raises(ModelFileError, match=says):
        check_model_file(damaged(model_files[kind], tmp_path, change))


def test_serve_refuses_a_truncated_bare_model_bin_at_start(model_files, start_server, tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    shutil.copy(damaged(model_files["plain"], tmp_path, lambda data: data[:len(data) // 2]), folder / "model.bin")
    server = start_server(folder, healthy=False)
    assert server.process.wait(timeout=60) != 0
    assert "needs" in server.log() and "damaged" in server.log()


def test_serve_refuses_model_files_that_do_not_match_the_manifest(fasttext_tree, start_server, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(fasttext_tree.model_dir, folder)
    (folder / "model.bin").write_bytes((folder / "model.bin").read_bytes()[:-4] + b"\0\0\0\1")  # same size
    server = start_server(folder, healthy=False)
    assert server.process.wait(timeout=60) != 0
    assert "do not match" in server.log()


def test_serve_refuses_a_manifest_of_another_format_saying_what_to_do(fasttext_tree, start_server, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(fasttext_tree.model_dir, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / "manifest.json").write_text(json.dumps({**manifest, "format_version": 2}))
    server = start_server(folder, healthy=False)
    assert server.process.wait(timeout=60) != 0
    assert "manifest format 2" in server.log() and "image that trained it" in server.log()
