"""Helpers the tests share (fixtures live in conftest.py)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from container.environment import ServingSettings
from container.handler import CUSTOM_ATTRIBUTES, Handler
from container.server import create_app


def wait_until(condition: Callable[[], bool], seconds: float, interval: float = 0.05) -> bool:
    """Poll `condition` until it holds or `seconds` pass; whether it held."""
    deadline = time.monotonic() + seconds
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


@contextmanager
def moto_server(monkeypatch, ready: Callable[[], bool]) -> Iterator[str]:
    """moto's local AWS server on a free loopback port, with boto3 pointed at it (AWS_ENDPOINT_URL,
    fake credentials) until the test ends; waits for `ready()` (a first call that succeeds), yields its URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
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
