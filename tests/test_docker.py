"""The real image: `docker run IMAGE train|serve`, and docker compose. Skipped without a Docker engine;
CI starts one with ../shared/docker-sandbox and passes its base image in DOCKER_BASE_IMAGE."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time

import pytest
import requests
from conftest import FAST_FASTTEXT, FAST_LSTM, ROOT, OptMl, sample_split, sample_tree
from support import free_port

pytestmark = pytest.mark.docker
IMAGE = "sentiment-sagemaker:test"


def docker_available() -> bool:
    return shutil.which("docker") is not None and subprocess.run(
        ["docker", "info"], capture_output=True, timeout=30).returncode == 0


@pytest.fixture(scope="session")
def image() -> str:
    if not docker_available():
        pytest.skip("no Docker engine running (../shared/docker-sandbox up starts one)")
    base = os.environ.get("DOCKER_BASE_IMAGE", "python:3.11-slim-bookworm")
    if subprocess.run(["docker", "image", "inspect", base], capture_output=True, timeout=60).returncode != 0:
        pulled = subprocess.run(["docker", "pull", base], capture_output=True, text=True, timeout=300)
        if pulled.returncode != 0:
            pytest.skip(f"the base image {base} cannot be had (no registry?): {pulled.stderr.strip()[-300:]}; "
                        "../shared/docker-sandbox up builds a local one, passed in DOCKER_BASE_IMAGE")
    built = subprocess.run(["docker", "build", "--network", "host", "--build-arg", f"BASE_IMAGE={base}", "-t", IMAGE,
                            str(ROOT)], capture_output=True, text=True, timeout=1800)
    if built.returncode != 0:
        pytest.fail(f"docker build failed:\n{built.stderr[-3000:]}")
    return IMAGE


def docker_run(image: str, tree: OptMl, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", "run", "--rm", "--network", "host", "-v", f"{tree.root}:/opt/ml", image, *args],
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session", params=["blazingtext", "lstm"])
def container_model(request, image, tmp_path_factory) -> OptMl:
    """A model trained by `docker run IMAGE train`, for each algorithm."""
    hyperparameters = FAST_FASTTEXT if request.param == "blazingtext" else FAST_LSTM
    tree = sample_tree(tmp_path_factory.mktemp("docker"), hyperparameters)
    result = docker_run(image, tree, "train")
    assert result.returncode == 0, result.stdout + result.stderr
    subprocess.run(["chmod", "-R", "a+rX", str(tree.root)], check=True)
    return tree


def test_train_in_the_container_writes_model_and_metrics(container_model, request):
    manifest = json.loads((container_model.model_dir / "manifest.json").read_text())
    assert manifest["algorithm"] == request.node.callspec.params["container_model"]
    assert (container_model.output_dir / "data/metrics.json").exists()


def test_a_bad_job_leaves_a_failure_reason_and_exits_non_zero(image, opt_ml):
    opt_ml.hyperparameters({"epochs": "zero", "early_stopping": "False"})
    opt_ml.channel("train", sample_split()["train"][:100])
    result = docker_run(image, opt_ml, "train")
    assert result.returncode != 0
    assert "epochs='zero'" in opt_ml.failure


def test_unknown_command_prints_usage(image):
    result = subprocess.run(["docker", "run", "--rm", image, "fit"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "usage: docker run IMAGE train|serve" in result.stderr


def wait_healthy(url: str, timeout: float = 120) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            if requests.get(url + "/ping", timeout=2).status_code == 200:
                return time.monotonic() - started
        except requests.ConnectionError:
            time.sleep(0.1)
    raise AssertionError(f"{url} not healthy after {timeout} s")


def test_serve_as_an_unprivileged_user_and_stop_on_sigterm(image, container_model):
    port = free_port()
    name = f"serve-test-{port}"
    subprocess.run(["docker", "run", "-d", "--name", name, "--network", "host", "--user", "1000:1000",
                    "-e", "SENTIMENT_BIND_HOST=127.0.0.1", "-e", f"SAGEMAKER_BIND_TO_PORT={port}",
                    "-v", f"{container_model.model_dir}:/opt/ml/model:ro", image, "serve"], check=True,
                   capture_output=True, timeout=60)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url)
        response = requests.post(url + "/invocations", json={"instances": ["a wonderful , moving film"]}, timeout=10)
        assert response.status_code == 200
        assert response.json()[0]["label"] == ["__label__positive"]
        started = time.monotonic()
        subprocess.run(["docker", "stop", "-t", "30", name], check=True, capture_output=True, timeout=60)
        assert time.monotonic() - started < 30
        state = json.loads(subprocess.run(["docker", "inspect", name], capture_output=True, text=True).stdout)
        assert state[0]["State"]["ExitCode"] == 0
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, timeout=60)


def compose_command() -> list[str]:
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    pytest.skip("neither docker compose nor docker-compose is installed")


def test_compose_file_is_valid(image):
    result = subprocess.run([*compose_command(), "-f", str(ROOT / "docker-compose.yml"), "config"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "train" in result.stdout and "serve" in result.stdout


def test_compose_up_serves_the_bundled_sample_and_becomes_healthy(image, tmp_path):
    port = free_port()
    env = {**os.environ, "IMAGE": image, "PORT": str(port), "OPT_ML_DIR": str(tmp_path / "opt-ml"),
           "COMPOSE_PROJECT_NAME": f"sentimenttest{port}"}
    compose = [*compose_command(), "-f", str(ROOT / "docker-compose.yml"),
               "-f", str(ROOT / "tests/docker-compose.sandbox.yml")]
    subprocess.run([*compose, "up", "-d", "serve"], env=env, check=True, capture_output=True, timeout=300)
    try:
        deadline = time.monotonic() + 300
        status = ""
        while time.monotonic() < deadline and status != "healthy":
            container = subprocess.run([*compose, "ps", "-q", "serve"], env=env, capture_output=True, text=True)
            status = subprocess.run(["docker", "inspect", "-f", "{{.State.Health.Status}}",
                                     container.stdout.strip()], capture_output=True, text=True).stdout.strip()
            time.sleep(2)
        logs = subprocess.run([*compose, "logs", "serve"], env=env, capture_output=True, text=True).stdout
        assert status == "healthy", logs
        assert "training the bundled sample" in logs
        response = requests.post(f"http://127.0.0.1:{port}/invocations", data="a lovely , warm film\n",
                                 headers={"Content-Type": "text/plain"}, timeout=10)
        assert json.loads(response.text.splitlines()[0])["label"] == ["__label__positive"]
        assert (tmp_path / "opt-ml/input/config/hyperparameters.json").exists()  # `train` can retrain from it
    finally:
        subprocess.run([*compose, "down", "-t", "30"], env=env, capture_output=True, timeout=120)
