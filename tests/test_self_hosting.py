"""What self-hosted deployments add: a bearer token, and Prometheus metrics on /metrics."""

from __future__ import annotations

import re

import pytest
import requests
from support import AppClient, wait_until


@pytest.fixture(scope="module")
def guarded(fasttext_tree) -> AppClient:
    return AppClient(fasttext_tree.model_dir, {"SENTIMENT_API_TOKEN": "s3cret-token"})


@pytest.mark.parametrize("authorization", [None, "Bearer wrong", "Bearer s3cret-token2", "s3cret-token", "Bearer é"])
def test_without_the_token_invocations_are_401(guarded, authorization):
    headers = {"Content-Type": "application/json"} | ({"Authorization": authorization} if authorization else {})
    response = guarded.client.post("/invocations", data='["fine"]', headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert "Authorization: Bearer" in response.get_json()["error"]


def test_with_the_token_invocations_are_answered_and_ping_needs_none(guarded):
    response = guarded.client.post("/invocations", data='["fine"]', headers={
        "Content-Type": "application/json", "Authorization": "Bearer s3cret-token"})
    assert response.status_code == 200
    assert guarded.get("/ping").status_code == 200


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one series in Prometheus' text format (0 when absent)."""
    selector = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    pattern = rf"^{name}(?:{{{re.escape(selector)}}})? ([0-9.e+]+)$" if labels else rf"^{name} ([0-9.e+]+)$"
    found = re.search(pattern, text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def test_metrics_add_up_every_workers_counts(fasttext_tree, start_server, tmp_path):
    server = start_server(fasttext_tree.model_dir, {
        "SENTIMENT_METRICS": "true", "SAGEMAKER_MODEL_SERVER_WORKERS": "2", "SENTIMENT_THRESHOLD": "1",
        "SENTIMENT_CAPTURE_URI": str(tmp_path / "captures")})
    texts = ["a lovely , warm film", "dull and tedious", "it was fine"]
    for _ in range(20):
        assert requests.post(server.url + "/invocations", json=texts, timeout=10).status_code == 200
    assert requests.post(server.url + "/invocations", data="{bad", timeout=10,
                         headers={"Content-Type": "application/json"}).status_code == 400
    requests.get(server.url + "/random/scan/path", timeout=10)

    def scrape() -> str:
        return requests.get(server.url + "/metrics", timeout=10).text

    def captured_all(text: str) -> bool:  # the capture writer runs beside the requests
        return metric(text, "sentiment_capture_written_total") + metric(text, "sentiment_capture_dropped_total") \
            == metric(text, "sentiment_answers_total", sentiment="unrecognized") > 0

    assert wait_until(lambda: captured_all(scrape()), seconds=10), scrape()
    text = scrape()
    assert metric(text, "sentiment_requests_total", path="/invocations", code="200") == 20
    assert metric(text, "sentiment_requests_total", path="/invocations", code="400") == 1
    assert metric(text, "sentiment_requests_total", path="other", code="404") == 1
    assert metric(text, "sentiment_request_seconds_count") == 21
    answered = sum(metric(text, "sentiment_answers_total", sentiment=s) for s in ("positive", "negative",
                                                                                   "unrecognized"))
    assert answered == 60
    assert "sentiment_capture_pending_files" not in text  # a folder store has no spool
