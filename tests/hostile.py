"""Hostile and malformed requests with the answer each must get: one list, used by the server
tests and rendered into docs/hostile-inputs.md (`python docs/hostile_inputs.py`)."""

from __future__ import annotations

import json
from dataclasses import dataclass


@dataclass(frozen=True)
class Case:
    """One request: what it is, its body and headers, the status it must get and a word its error names."""

    what: str
    body: bytes | str
    content_type: str | None = "application/json"
    accept: str | None = None
    attributes: str | None = None
    status: int = 400
    says: str = ""


CASES = [
    Case("not JSON", "{not json", says="invalid JSON"),
    Case("instances are not strings", json.dumps({"instances": [1, 2]}), says="instances[0]"),
    Case("an object without instances", json.dumps({"texts": ["x"]}), says="instances"),
    Case("k of 0", json.dumps({"instances": ["x"], "configuration": {"k": 0}}), says="k"),
    Case("k of 2^31", json.dumps({"instances": ["x"], "configuration": {"k": 2**31}}), says="k"),
    Case("k as a Unicode digit", '{"source": "x", "k": "²"}\n', "application/jsonlines", says="k"),
    Case("k attribute not a number", json.dumps(["x"]), attributes="k=two", says="k"),
    Case("threshold attribute out of range", json.dumps(["x"]), attributes="threshold=2", says="threshold"),
    Case("no texts (JSON)", json.dumps([]), says="no texts"),
    Case("no texts (plain text)", "", "text/plain", says="no texts"),
    Case("a JSON line without source", '{"text": "x"}\n', "application/jsonlines", says="line 1"),
    Case("JSON nested 1,000 deep", "[" * 1000 + "]" * 1000, says="nested"),
    Case("a lone surrogate in JSON", '["\\ud800 lonely"]', says="surrogate"),
    Case("a lone surrogate in a JSON line", '{"source": "\\udfff"}\n', "application/jsonlines", says="surrogate"),
    Case("bytes that are not UTF-8", b"\xff\xfe bad", "text/plain", says="utf-8"),
    Case("charset=punycode with bad bytes", b"abc-\xff\xfe", "text/plain; charset=punycode", says="punycode"),
    Case("an unknown charset", "x", "text/plain; charset=klingon", status=415, says="charset"),
    Case("a codec that is not a text encoding", "aGk=", "text/plain; charset=base64", status=415, says="charset"),
    Case("an unsupported Content-Type", "x", "image/png", status=415, says="Content-Type"),
    Case("no Content-Type", "x", None, status=415, says="Content-Type"),
    Case("an Accept we cannot write", json.dumps(["x"]), accept="image/png", status=406, says="Accept"),
    Case("an Accept that refuses CSV by q=0", json.dumps(["x"]), accept="text/*, text/csv;q=0", status=406,
         says="Accept"),
]

# Tested elsewhere, against a real gunicorn or real files (listed in the same document).
ELSEWHERE = [
    ("a body over 6 MB, with Content-Length or chunked", "413, refused whole", "test_server.py"),
    ("a malformed chunk", "400", "test_server.py"),
    ("a large body that stalls", f"408 after {10} s (SENTIMENT_READ_TIMEOUT), then the connection ends",
     "test_slow_clients.py"),
    ("200 clients trickling their headers", "no thread held; /ping answered within 2 s; closed after the "
     "read timeout", "test_slow_clients.py"),
    ("a request line gunicorn cannot parse", "400 as JSON, with X-Request-Id", "test_slow_clients.py"),
    ("OPTIONS", "405", "test_server.py"),
    ("an exception in user code", "500 naming only the kind of fault and the request id; traceback in the "
     "log with the message cut to 300 characters", "test_server.py"),
    ("threshold=1 from a client, with capture on", "its own answers change; the store follows the server's "
     "threshold", "test_unrecognized.py"),
    ("no or a wrong bearer token (SENTIMENT_API_TOKEN set)", "401 with WWW-Authenticate: Bearer",
     "test_self_hosting.py"),
    ("model.bin truncated, cut in half, with trailing bytes, or a header field of 2^31-1",
     "serve refuses to start, naming the reason", "test_model_files.py"),
    ("model files that do not match the manifest", "serve refuses to start", "test_model_files.py"),
    ("random bodies, content types, Accept and attributes (hypothesis)", "never a 5xx", "test_fuzz.py"),
]
