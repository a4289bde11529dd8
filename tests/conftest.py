"""Shared fixtures: real data, real `train` runs in /opt/ml-shaped trees, a real `serve`."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

from model.threads import choose_openblas_kernels

choose_openblas_kernels()  # before NumPy loads, as `train` and `serve` do: tests run the arithmetic the image runs

from support import ROOT, AppClient, Server  # noqa: E402

from container.sample import SAMPLE  # noqa: E402
from model.datasets import to_blazingtext_line  # noqa: E402
from model.fasttext_model import zeroed_allocations  # noqa: E402

SHARED_DATA = ROOT.parent / "shared" / "data"
# Small and fast, still a real model: what most tests train.
FAST_FASTTEXT = {"buckets": "100000", "epochs": "10", "learning_rate": "0.3", "quantize": "False",
                 "min_count": "1", "ensemble": "false"}  # the ensemble has its own fixture
# Small and fast, still a real model (~75 % on the sample's test split).
FAST_LSTM = {"algorithm": "lstm", "epochs": "3", "embed_dim": "64", "hidden_dim": "32", "batch_size": "64",
             "min_count": "1", "ensemble": "false"}
JOB_KEYS = ("algorithm", "ensemble")  # FAST_LSTM's keys that are the job's, not the LSTM's


def fasttext_api(train: Callable, *args, **kwargs):
    """`train(*args, **kwargs)` for fastText's own API (`fasttext.train_supervised`, ...) called in this
    long-lived process: on zeroed memory, as the job trains, since fastText 0.9.3 can start from the
    garbage of a used heap and fail with "Encountered NaN." (model/fasttext_model.py)."""
    with zeroed_allocations():
        return train(*args, **kwargs)


def shared_data(relative: str) -> Path:
    """A file under ../shared/data, or skip the test when the data is not there."""
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"needs ../shared/data/{relative} (not present on this machine)")
    return path


def bench_module(name: str) -> ModuleType:
    """bench/`name`.py as a module: a test that trains what a bench trains takes its data from it."""
    if str(ROOT / "bench") not in sys.path:
        sys.path.insert(0, str(ROOT / "bench"))
    return importlib.import_module(name)


@dataclass
class Training:
    """A `train` process started by OptMl.start_training, and the files of its output."""

    process: subprocess.Popen
    stdout: Path
    stderr: Path

    def wait(self, timeout: float) -> subprocess.CompletedProcess:
        """Its outcome, as subprocess.run gives it; killed after `timeout` seconds (TimeoutExpired)."""
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise
        return subprocess.CompletedProcess(self.process.args, self.process.returncode,
                                           self.stdout.read_text(), self.stderr.read_text())


@dataclass
class OptMl:
    """An /opt/ml-shaped folder, and the SM_* variables pointing `train` and `serve` at it."""

    root: Path

    @property
    def model_dir(self) -> Path:
        return self.root / "model"

    @property
    def output_dir(self) -> Path:
        return self.root / "output"

    def env(self) -> dict[str, str]:
        return {
            "SM_INPUT_CONFIG_DIR": str(self.root / "input/config"),
            "SM_INPUT_DATA_DIR": str(self.root / "input/data"),
            "SM_MODEL_DIR": str(self.model_dir),
            "SM_OUTPUT_DIR": str(self.output_dir),
            "SM_OUTPUT_DATA_DIR": str(self.output_dir / "data"),
            "SM_CHECKPOINT_DIR": str(self.root / "checkpoints"),
        }

    def hyperparameters(self, values: dict) -> None:
        config = self.root / "input/config"
        config.mkdir(parents=True, exist_ok=True)
        (config / "hyperparameters.json").write_text(json.dumps(values))

    def channel(self, name: str, lines: list[str], file_name: str = "data.txt") -> Path:
        folder = self.root / "input/data" / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / file_name).write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        return folder

    def start_training(self, extra_env: dict | None = None, niceness: int = 0) -> Training:
        """`train` started on this tree; its output goes to files beside it (a pipe nobody reads would fill)."""
        self.root.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.env(), **(extra_env or {})}
        stdout, stderr = self._output("stdout"), self._output("stderr")
        with stdout.open("w") as out, stderr.open("w") as err:
            process = subprocess.Popen(["nice", "-n", str(niceness), sys.executable, str(ROOT / "train")], env=env,
                                       stdout=out, stderr=err, cwd=self.root)
        return Training(process, stdout, stderr)

    def _output(self, stream: str) -> Path:
        return self.root.parent.parent / f"train-{stream}.txt"

    @property
    def training_log(self) -> str:
        """What the last `train` started on this tree printed (its stdout)."""
        return self._output("stdout").read_text()

    def train(self, extra_env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
        return self.start_training(extra_env).wait(timeout)

    @property
    def failure(self) -> str | None:
        path = self.output_dir / "failure"
        return path.read_text() if path.exists() else None


def sample_split() -> dict[str, list[str]]:
    """The bundled sample, split 80/10/10 by line position within each label (stable, no randomness)."""
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()
    split: dict[str, list[str]] = {"train": [], "validation": [], "test": []}
    for label in ("__label__positive", "__label__negative"):
        rows = [line for line in lines if line.startswith(label)]
        cut1, cut2 = int(len(rows) * 0.8), int(len(rows) * 0.9)
        split["train"] += rows[:cut1]
        split["validation"] += rows[cut1:cut2]
        split["test"] += rows[cut2:]
    return split


@pytest.fixture
def opt_ml(tmp_path: Path) -> OptMl:
    return OptMl(tmp_path / "opt/ml")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked slow run last: they wait for the default job, which `default_job` starts when the
    session starts, so that its 10-12 minutes of training overlap the other tests."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is not None)  # stable: the rest keep their order


@pytest.fixture(scope="session", autouse=True)
def default_job(request, tmp_path_factory) -> Iterator[tuple[OptMl, Training] | None]:
    """The default job (`{}` hyperparameters) on bench/compare.py's channels (all of ../shared/data but its
    test sets; the README's figures are its model's) with a sixth of their hand-labelled rows: the sentence
    encoder reads all of them in ~20 minutes on 2 cores, past CI's budget beside the other tests. `train`
    started in the background, at a lower priority than the other tests' processes, as the session starts.
    None when no selected test is marked slow or ../shared/data is missing."""
    if not (SHARED_DATA / "sentiment140").exists() or \
            not any(item.get_closest_marker("slow") for item in request.session.items):
        yield None
        return
    tree = OptMl(tmp_path_factory.mktemp("default") / "opt/ml")
    tree.hyperparameters({})
    for name, examples in bench_module("compare").channels_and_tests()[0].items():
        tree.channel(name, [to_blazingtext_line(e) for e in (examples[::6] if name == "hand_labelled" else examples)])
    training = tree.start_training(niceness=10)
    yield tree, training
    if training.process.poll() is None:  # the session ended early (-x, Ctrl-C)
        training.process.kill()
        training.process.wait()


def sample_tree(root: Path, hyperparameters: dict, channels: dict[str, list[str]] | None = None) -> OptMl:
    """An /opt/ml tree under `root` with these hyperparameters and channels (the sample's split by default)."""
    tree = OptMl(root / "opt/ml")
    tree.hyperparameters(hyperparameters)
    for name, lines in (channels or sample_split()).items():
        tree.channel(name, lines)
    return tree


def trained_tree(tmp_path_factory, hyperparameters: dict, extra_env: dict | None = None,
                 channels: dict[str, list[str]] | None = None) -> OptMl:
    """A sample_tree in a fresh folder, trained by `train` (which must succeed)."""
    tree = sample_tree(tmp_path_factory.mktemp("trained"), hyperparameters, channels)
    result = tree.train(extra_env)
    assert result.returncode == 0, result.stdout + result.stderr
    return tree


@pytest.fixture(scope="session")
def fasttext_tree(tmp_path_factory) -> OptMl:
    """A fastText model trained by `train` on the bundled sample, on one thread: the same model
    every run (fastText is reproducible only so), which tests that pick texts by its verdicts need."""
    return trained_tree(tmp_path_factory, FAST_FASTTEXT, {"SM_NUM_CPUS": "1"})


def _with_hand_labelled() -> dict[str, list[str]]:
    """The sample's split with every fifth train row (1,706) moved to a hand_labelled channel."""
    channels = sample_split()
    channels["hand_labelled"] = channels["train"][::5]
    channels["train"] = [line for i, line in enumerate(channels["train"]) if i % 5]
    return channels


@pytest.fixture(scope="session")
def ensemble_tree(tmp_path_factory) -> OptMl:
    """A fastText model, an LSTM (its defaults), a fastText model of the hand_labelled channel and the
    sentence encoder's regression on it, weighed together with the lexicon, trained by `train` on the
    bundled sample."""
    return trained_tree(tmp_path_factory, {**FAST_FASTTEXT, "ensemble": "true"}, channels=_with_hand_labelled())


@pytest.fixture(scope="session")
def lstm_ensemble_tree(tmp_path_factory) -> OptMl:
    """As `ensemble_tree`, with the LSTM as the job's algorithm: fastText (its defaults) is the member beside it."""
    return trained_tree(tmp_path_factory, {**FAST_LSTM, "ensemble": "true"}, channels=_with_hand_labelled())


@pytest.fixture(scope="session")
def lstm_tree(tmp_path_factory) -> OptMl:
    """An LSTM trained by `train` on the bundled sample."""
    return trained_tree(tmp_path_factory, FAST_LSTM)


@pytest.fixture(scope="module", params=["blazingtext", "lstm"])
def server(request) -> AppClient:
    """`serve`'s app on each algorithm's model, through Flask's test client (tests/support.py's
    AppClient): nothing in container/ knows which algorithm it serves."""
    tree = request.getfixturevalue("fasttext_tree" if request.param == "blazingtext" else "lstm_tree")
    return AppClient(tree.model_dir)


@pytest.fixture
def start_server(tmp_path: Path):
    """Start `serve` on a model folder; every server started is stopped after the test."""
    servers = []

    def start(model_dir: Path, extra_env: dict | None = None, healthy: bool = True) -> Server:
        server = Server(model_dir, tmp_path / f"serve-{len(servers)}.log", extra_env)
        servers.append(server)
        if healthy:
            server.wait_healthy()
        return server

    yield start
    for server in servers:
        server.stop()
