"""Unit tests of the dataset readers (model/datasets.py), the stratified split and `prepare`."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from conftest import SAMPLE, shared_data

from model.datasets import DataError, Example, read_path, stratified_split

# --- readers ----------------------------------------------------------------


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def test_blazingtext_lines(tmp_path):
    examples, report = read_path(write(tmp_path, "a.txt", "__label__positive good stuff\n\n__label__negative bad\n"))
    assert examples == [Example("good stuff", "positive"), Example("bad", "negative")]
    assert report.rows == 2


def test_augmented_manifest_lines(tmp_path):
    content = '{"source": "good", "label": 1}\n{"source": "bad", "label": 0}\n{"source": "x"}\n'
    examples, report = read_path(write(tmp_path, "a.jsonl", content))
    assert examples == [Example("good", "1"), Example("bad", "0")]
    assert report.skipped == {"missing or unknown label": 1}


def test_sentiment140_latin1_and_zipped(tmp_path):
    rows = ('"0","1","Mon","NO_QUERY","u","caf\xe9 was bad"\n"4","2","Mon","NO_QUERY","u","great"\n'
            '"2","3","Mon","NO_QUERY","u","meh"\n')
    plain = write(tmp_path, "s140.csv", rows.encode("latin-1"))
    examples, _ = read_path(plain)
    assert examples == [Example("café was bad", "negative"), Example("great", "positive"), Example("meh", "neutral")]
    with zipfile.ZipFile(tmp_path / "s140.zip", "w") as archive:
        archive.write(plain, "training.csv")
    assert read_path(tmp_path / "s140.zip")[0] == examples


def test_one_latin1_line_in_a_utf8_file_spoils_only_that_line(tmp_path):
    content = "__label__positive caf\u00e9 cr\u00e8me \U0001F600\n".encode() + b"__label__negative na\xefve\n"
    examples, report = read_path(write(tmp_path, "a.txt", content))
    assert examples == [Example("café crème 😀", "positive"), Example("naïve", "negative")]
    assert report.cp1252_lines == 1


def test_semeval_tsv_with_escapes(tmp_path):
    content = "1\tpositive\tI\\u2019m happy\\u002c really\n2\tnegative\tsad\nbroken line\n"
    examples, report = read_path(write(tmp_path, "a.txt", content))
    assert examples == [Example("I’m happy, really", "positive"), Example("sad", "negative")]
    assert report.skipped == {"not 3 tab-separated columns": 1}


def test_label_text_csv_with_header_and_unquoted_commas(tmp_path):
    examples, _ = read_path(write(tmp_path, "a.csv", "label,text\npositive,good, really good\nnegative,\"bad\"\n"))
    assert examples == [Example("good, really good", "positive"), Example("bad", "negative")]


def test_folder_of_mixed_formats_skips_hidden_files(tmp_path):
    write(tmp_path, "a.txt", "__label__positive good\n")
    write(tmp_path, "b.csv", "negative,bad\n")
    write(tmp_path, ".hidden", "garbage\x00")
    examples, report = read_path(tmp_path)
    assert sorted(examples) == [Example("bad", "negative"), Example("good", "positive")]
    assert len(report.files) == 2


def test_mostly_malformed_file_is_rejected_naming_it(tmp_path):
    path = write(tmp_path, "bad.txt", "__label__positive ok\n" + "__label__a __label__b x\n" * 3)
    with pytest.raises(DataError, match=r"bad\.txt: 3 of 4 rows are unusable"):
        read_path(path)


def test_real_shared_data_reads():
    _, report = read_path(shared_data("sentiment140/training.110k.processed.noemoticon.csv"))
    assert report.rows == 110_119 and not report.skipped
    assert report.labels == {"negative": 54_835, "positive": 55_284}
    _, test_report = read_path(shared_data("sentiment140/testdata.manual.2009.06.14.csv"))
    assert test_report.labels == {"negative": 177, "neutral": 139, "positive": 182}


# --- split ------------------------------------------------------------------


def test_stratified_split_keeps_proportions_and_is_seeded():
    examples = [Example(f"p{i}", "positive") for i in range(700)] + [Example(f"n{i}", "negative") for i in range(300)]
    train, validation, test = stratified_split(examples, (0.7, 0.15, 0.15), seed=3)
    assert (len(train), len(validation), len(test)) == (700, 150, 150)
    assert sum(e.label == "positive" for e in validation) == 105
    assert {e.text for e in train + validation + test} == {e.text for e in examples}
    assert stratified_split(examples, (0.7, 0.15, 0.15), seed=3)[1] == validation
    assert stratified_split(examples, (0.7, 0.15, 0.15), seed=4)[1] != validation


def test_prepare_command_writes_blazingtext_channels(tmp_path):
    from model.prepare import prepare

    written = prepare([SAMPLE], tmp_path, train_fraction=0.8, seed=1, log=lambda _: None)
    assert written["train"] == pytest.approx(0.8 * sum(written.values()), abs=2)
    first = (tmp_path / "train/train.txt").read_text().splitlines()[0]
    assert first.startswith("__label__") and first == first.lower()
