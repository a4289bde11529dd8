"""`serve` as SageMaker runs it, on real trained models of both algorithms, in two layers.

The contract (formats, content types, errors) goes through the app in process (`server`,
Flask's test client); what only a real server shows (ping, body limit over a socket,
logs, signals, start-up failures) goes through a real gunicorn on a loopback port (`live`).
"""

from __future__ import annotations

import csv
import io
import json
import re
import socket
import time
from pathlib import Path

import pytest
import requests
from conftest import sample_split
from hostile import CASES
from support import Server, wait_until

POSITIVE = "a wonderful , moving and funny film"
NEGATIVE = "a dull , tedious and boring mess"


TREES = {"blazingtext": "fasttext_tree", "lstm": "lstm_tree"}


@pytest.fixture(scope="module", params=list(TREES))
def live(request, tmp_path_factory):
    """`serve` on each algorithm's model, a real gunicorn on a loopback port."""
    tree = request.getfixturevalue(TREES[request.param])
    server = Server(tree.model_dir, tmp_path_factory.mktemp("serve") / "serve.log")
    server.wait_healthy()
    yield server
    server.stop()


def labels(records: list[dict]) -> list[str]:
    return [r["label"][0] for r in records]


def test_ping_is_200_with_an_empty_body(live):
    response = requests.get(live.url + "/ping", timeout=2)
    assert response.status_code == 200
    assert response.content == b""


def test_json_instances_in_blazingtext_shape(server):
    response = server.post(json.dumps({"instances": [POSITIVE, NEGATIVE]}))
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    records = response.json()
    assert labels(records) == ["__label__positive", "__label__negative"]
    for record in records:
        assert set(record) == {"label", "prob", "sentiment", "confidence"}
        assert len(record["label"]) == len(record["prob"]) == 1
        assert 0.5 <= record["prob"][0] <= 1.0
        assert record["confidence"] == record["prob"][0]
    assert response.headers["X-Request-Id"]


def test_json_k_gives_all_labels_with_probabilities_summing_to_at_most_one(server):
    records = server.post(json.dumps({"instances": [POSITIVE], "configuration": {"k": 2}})).json()
    assert sorted(records[0]["label"]) == ["__label__negative", "__label__positive"]
    assert records[0]["prob"] == sorted(records[0]["prob"], reverse=True)
    # What they leave below 1 is the neutral mass the lexicon combination learned (model/combiner.py).
    assert 0.5 < sum(records[0]["prob"]) <= 1 + 1e-9


@pytest.mark.parametrize("body", [json.dumps(POSITIVE), json.dumps([POSITIVE])])
def test_json_bare_string_or_list(server, body):
    assert labels(server.post(body).json()) == ["__label__positive"]


def test_jsonlines_in_and_out_one_line_per_input_in_order(server):
    body = "".join(json.dumps({"source": t}) + "\n" for t in [NEGATIVE, POSITIVE, NEGATIVE])
    response = server.post(body, "application/jsonlines")
    assert response.headers["Content-Type"].startswith("application/jsonlines")
    lines = response.text.splitlines()
    assert [json.loads(line)["label"][0] for line in lines] == [
        "__label__negative", "__label__positive", "__label__negative"]


def test_jsonlines_per_line_k(server):
    body = json.dumps({"source": POSITIVE, "k": 2}) + "\n" + json.dumps({"source": NEGATIVE}) + "\n"
    first, second = (json.loads(line) for line in server.post(body, "application/jsonlines").text.splitlines())
    assert len(first["label"]) == 2 and len(second["label"]) == 1


def test_csv_with_charset_parameter_and_csv_answer(server):
    body = f'"{POSITIVE}"\n{NEGATIVE}\n'
    response = server.post(body, "text/csv; charset=utf-8", accept="text/csv")
    assert response.status_code == 200, response.text
    rows = list(csv.reader(io.StringIO(response.text)))  # sentiment,confidence,label,prob
    assert [row[2] for row in rows] == ["__label__positive", "__label__negative"]
    assert all(row[0] in ("positive", "negative", "unrecognized") and row[1] == row[3] for row in rows)


def test_text_plain_lines_answered_as_jsonlines_by_default(server):
    response = server.post(f"{POSITIVE}\r\n{NEGATIVE}\n", "text/plain")
    assert response.headers["Content-Type"].startswith("application/jsonlines")
    assert [json.loads(line)["label"][0] for line in response.text.splitlines()] == [
        "__label__positive", "__label__negative"]


@pytest.mark.parametrize("accept, expected", [
    ("application/jsonlines", "application/jsonlines"),
    ("text/csv", "text/csv"),
    ("*/*", "application/json"),
    ("text/html;q=0.9, text/csv;q=0.5", "text/csv"),
    ("application/*", "application/json"),
])
def test_accept_is_followed(server, accept, expected):
    response = server.post(json.dumps([POSITIVE, NEGATIVE]), accept=accept)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith(expected)


def test_custom_attribute_k(server):
    records = server.post(POSITIVE, "text/plain", accept="application/json", attributes="k=2").json()
    assert len(records[0]["label"]) == 2


def test_non_ascii_and_empty_texts_are_answered(server):
    records = server.post(json.dumps(["Ça va très bien 😀 merci", "", "   "])).json()
    assert len(records) == 3


@pytest.mark.parametrize("case", CASES, ids=[case.what for case in CASES])
def test_bad_requests_get_4xx_json_saying_what_is_wrong(server, case):
    response = server.post(case.body, case.content_type, case.accept, case.attributes)
    assert response.status_code == case.status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    assert case.says.lower() in response.json()["error"].lower()
    assert len(response.headers["X-Request-Id"]) == 32  # errors carry an id too


def test_options_is_not_allowed(server):
    assert server.client.options("/invocations").status_code == 405


def test_body_over_6_mb_is_413_and_just_under_is_served(live):
    server = live
    limit = 6 * 1024 * 1024
    line = (POSITIVE * 30 + "\n").encode()  # long lines: the limit is in bytes, the model's time per text
    under = line * ((limit - 1) // len(line))
    response = server.post(under, "text/plain")
    assert response.status_code == 200
    assert len(response.text.splitlines()) == under.count(b"\n")
    over = server.post(b"a" * (limit + 1), "text/plain")
    assert over.status_code == 413
    assert "6,291,456" in over.json()["error"]


def test_chunked_bodies_are_held_to_the_same_limit(live):
    line = (POSITIVE * 30 + "\n").encode()
    count = 7_500_000 // len(line)  # 7.5 MB with no Content-Length: refused whole, never cut to 6 MiB

    def chunks(n: int):
        yield from (line for _ in range(n))

    over = requests.post(live.url + "/invocations", data=chunks(count), headers={"Content-Type": "text/plain"},
                         timeout=30)
    assert over.status_code == 413, over.text[:200]
    under = requests.post(live.url + "/invocations", data=chunks(100), headers={"Content-Type": "text/plain"},
                          timeout=30)
    assert under.status_code == 200
    assert len(under.text.splitlines()) == 100


def test_a_malformed_chunk_is_400(live):
    request = (b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
               b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\nzz\r\n0\r\n\r\n")
    with socket.create_connection(("127.0.0.1", live.port), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]


def test_unknown_route_and_method_are_json(server):
    assert server.get("/nope").json()["error"]
    response = server.get("/invocations")
    assert response.status_code == 405
    assert response.json()["error"]


def test_execution_parameters(server):
    params = server.get("/execution-parameters").json()
    assert params["BatchStrategy"] == "MULTI_RECORD"
    assert params["MaxPayloadInMB"] == 6
    assert params["MaxConcurrentTransforms"] * params["MaxPayloadInMB"] <= 100


def test_the_server_survives_bad_requests_and_pings_are_not_access_logged(live):
    server = live
    for _ in range(5):
        server.post("{bad", "application/json")
        requests.get(server.url + "/ping", timeout=2)
    answered = server.post(json.dumps([POSITIVE]))
    assert answered.status_code == 200
    # The access line is written after the answer is sent: the client can read the log first.
    line = rf'"POST /invocations HTTP/1.1" 200 \d+ [\d.]+ {answered.headers["X-Request-Id"]}'
    assert wait_until(lambda: re.search(line, server.log()), 10), server.log()
    assert "GET /ping" not in server.log()


def test_each_worker_sizes_its_math_thread_pools_and_logs_it(live):
    # Two workers (conftest's Server), each limiting OpenBLAS to one thread after the fork.
    assert wait_until(lambda: len(re.findall(r"worker \d+: math thread pools: openblas.*: 1 thread\b",
                                             live.log())) == 2, 30), live.log()


def test_math_threads_per_worker_can_be_set(start_server, fasttext_tree):
    server = start_server(fasttext_tree.model_dir, {"SENTIMENT_MATH_THREADS": "2"})
    assert wait_until(lambda: len(re.findall(r"math thread pools: openblas.*: 2 threads", server.log())) == 2,
                      30), server.log()
    assert server.post(json.dumps([POSITIVE])).status_code == 200


def test_batch_transform_settings(start_server, fasttext_tree):
    server = start_server(fasttext_tree.model_dir, {"SAGEMAKER_BATCH": "true", "SAGEMAKER_MAX_PAYLOAD_IN_MB": "20",
                                                    "SAGEMAKER_BATCH_STRATEGY": "SINGLE_RECORD"})
    params = requests.get(server.url + "/execution-parameters", timeout=5).json()
    assert params == {"MaxConcurrentTransforms": 2, "BatchStrategy": "SINGLE_RECORD", "MaxPayloadInMB": 20}
    line = (POSITIVE * 30 + "\n").encode()
    body = line * (8 * 1024 * 1024 // len(line))  # 8 MB, over real-time's 6
    response = server.post(body, "text/plain")
    assert response.status_code == 200
    assert len(response.text.splitlines()) == body.count(b"\n")


def test_sigterm_stops_the_server_within_30_seconds(start_server, fasttext_tree):
    server = start_server(fasttext_tree.model_dir)
    started = time.monotonic()
    assert server.stop(timeout=30) == 0
    assert time.monotonic() - started < 30


def test_a_folder_without_a_model_fails_at_start_with_the_reason(start_server, tmp_path):
    (tmp_path / "empty").mkdir()
    server = start_server(tmp_path / "empty", healthy=False)
    assert server.process.wait(timeout=30) != 0
    assert "no model in" in server.log()


def test_invalid_settings_fail_at_start_naming_the_variable(start_server, fasttext_tree):
    server = start_server(fasttext_tree.model_dir, {"SAGEMAKER_MODEL_SERVER_WORKERS": "lots"}, healthy=False)
    assert server.process.wait(timeout=30) != 0
    assert "SAGEMAKER_MODEL_SERVER_WORKERS" in server.log()


def model_with_code(model_dir: Path, tmp_path: Path, file_name: str, code: str) -> Path:
    """A model folder like `model_dir`, plus user code in code/`file_name`."""
    folder = tmp_path / "model"
    folder.mkdir()
    for path in model_dir.iterdir():
        (folder / path.name).symlink_to(path)
    (folder / "code").mkdir()
    (folder / "code" / file_name).write_text(code)
    return folder


def test_user_code_replaces_only_the_functions_it_defines(start_server, fasttext_tree, tmp_path):
    code = ("import json\n"
            "def input_fn(request_body, content_type):\n"
            "    from container.formats import InferenceRequest\n"
            "    texts = [t.strip() for t in request_body.decode().split('|')]\n"
            "    return InferenceRequest(texts, [1] * len(texts))\n"
            "def output_fn(prediction, accept):\n"
            "    return json.dumps({'sentiments': [p.labels[0] for p in prediction]}), 'application/json'\n")
    model_dir = model_with_code(fasttext_tree.model_dir, tmp_path, "inference.py", code)
    server = start_server(model_dir)
    response = server.post(f"{POSITIVE} | {NEGATIVE}", "text/x-pipe-separated")
    assert response.status_code == 200, response.text
    assert response.json() == {"sentiments": ["positive", "negative"]}
    assert "user code" in server.log()


def test_user_code_errors_are_500_with_a_reference_and_logged_with_traceback(start_server, fasttext_tree, tmp_path):
    model_dir = model_with_code(fasttext_tree.model_dir, tmp_path, "handler.py",
                                "def predict_fn(data, model):\n"
                                "    raise RuntimeError('boom: ' + ' ' * 400 + repr(data.texts))\n")
    server = start_server(model_dir, {"SAGEMAKER_PROGRAM": "handler.py"})
    response = server.post(json.dumps(["a secret message"]))
    assert response.status_code == 500
    error = response.json()["error"]
    assert "RuntimeError" in error and "secret" not in error  # the message may hold texts: log only
    assert response.headers["X-Request-Id"] in error
    assert server.post("{bad").status_code == 400  # still serving
    log = server.log()
    assert "Traceback" in log and f"invocation {response.headers['X-Request-Id']} failed" in log
    assert "a secret message" not in log  # the message is cut (here 'boom: ' + the texts) but the trace stays


def test_manifest_names_the_algorithm_served(live, request):
    model_dir = request.getfixturevalue(TREES[request.node.callspec.params["live"]]).model_dir
    manifest = json.loads((model_dir / "manifest.json").read_text())
    assert manifest["algorithm"] == request.node.callspec.params["live"]
    assert f"({manifest['algorithm']})" in live.log()


def test_model_quality_on_held_out_sample(server):
    test_lines = sample_split()["test"]
    texts = [line.split(" ", 1)[1] for line in test_lines]
    truth = [line.split(" ", 1)[0] for line in test_lines]
    predicted = labels(server.post(json.dumps(texts)).json())
    accuracy = sum(p == t for p, t in zip(predicted, truth)) / len(truth)
    assert accuracy > 0.70, accuracy
