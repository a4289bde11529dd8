"""Helpers the tests share (fixtures live in conftest.py)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from container.environment import ServingSettings
from container.handler import CUSTOM_ATTRIBUTES, Handler
from container.server import create_app

ROOT = Path(__file__).resolve().parent.parent


def wait_until(condition: Callable[[], bool], seconds: float, interval: float = 0.05) -> bool:
    """Poll `condition` until it holds or `seconds` pass; whether it held."""
    deadline = time.monotonic() + seconds
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def moto_server(monkeypatch, ready: Callable[[], bool]) -> Iterator[str]:
    """moto's local AWS server on a free loopback port, with boto3 pointed at it (AWS_ENDPOINT_URL,
    fake credentials) until the test ends; waits for `ready()` (a first call that succeeds), yields its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for name, value in {"AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                            "AWS_DEFAULT_REGION": "us-east-1"}.items():
            monkeypatch.setenv(name, value)
        assert wait_until(_succeeds(ready), seconds=30), "moto's server did not start"
        yield url
    finally:
        server.terminate()
        server.wait(10)


def _succeeds(call: Callable[[], object]) -> Callable[[], bool]:
    def attempt() -> bool:
        try:
            call()
        except Exception:  # not listening yet: botocore's connection errors, whatever their class
            return False
        return True
    return attempt


@dataclass
class Reply:
    """What a test reads of an HTTP answer, the same from the test client as from `requests`."""

    status_code: int
    headers: Mapping[str, str]
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode()

    def json(self) -> Any:
        return json.loads(self.content)


class AppClient:
    """`serve`'s WSGI app on a real model, called in process through Flask's test client.

    The fast layer of the server tests: the whole request path (routes, handler, formats,
    the model) without gunicorn and sockets; what only a real server shows is tested on one.
    """

    def __init__(self, model_dir: Path, env: Mapping[str, str] | None = None):
        self.handler = Handler(ServingSettings.from_env({"SM_MODEL_DIR": str(model_dir), **(env or {})}))
        self.client = create_app(self.handler).test_client()

    def post(self, body: bytes | str, content_type: str | None = "application/json", accept: str | None = None,
             attributes: str | None = None) -> Reply:
        headers = {name: value for name, value in (("Content-Type", content_type), ("Accept", accept),
                                                   (CUSTOM_ATTRIBUTES, attributes)) if value is not None}
        response = self.client.post("/invocations", data=body.encode() if isinstance(body, str) else body,
                                    headers=headers)
        return Reply(response.status_code, response.headers, response.data)

    def get(self, path: str) -> Reply:
        response = self.client.get(path)
        return Reply(response.status_code, response.headers, response.data)


class Server:
    """`serve` as a real subprocess on a free loopback port."""

    def __init__(self, model_dir: Path, log_path: Path, extra_env: dict | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        env = {**os.environ, "SM_MODEL_DIR": str(model_dir), "SAGEMAKER_BIND_TO_PORT": str(self.port),
               "SENTIMENT_BIND_HOST": "127.0.0.1", "SAGEMAKER_MODEL_SERVER_WORKERS": "2", **(extra_env or {})}
        self.log_file = log_path.open("w")
        self.started = time.monotonic()
        self.process = subprocess.Popen([sys.executable, str(ROOT / "serve")], env=env, stdout=self.log_file,
                                        stderr=subprocess.STDOUT, cwd=log_path.parent)

    def wait_healthy(self, timeout: float = 60) -> float:
        """Seconds from start to the first /ping 200."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"serve exited with {self.process.returncode}:\n{self.log()}")
            try:
                if requests.get(self.url + "/ping", timeout=2).status_code == 200:
                    return time.monotonic() - self.started
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"serve not healthy after {timeout} s:\n{self.log()}")

    def log(self) -> str:
        if not self.log_file.closed:
            self.log_file.flush()
        return self.log_path.read_text()

    def post(self, body: bytes | str, content_type: str | None = "application/json", accept: str | None = None,
             attributes: str | None = None) -> requests.Response:
        headers = {}
        if content_type is not None:
            headers["Content-Type"] = content_type
        if accept is not None:
            headers["Accept"] = accept
        if attributes is not None:
            headers["X-Amzn-SageMaker-Custom-Attributes"] = attributes
        data = body.encode() if isinstance(body, str) else body
        return requests.post(self.url + "/invocations", data=data, headers=headers, timeout=30)

    def stop(self, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log_file.close()
        return self.process.returncode
