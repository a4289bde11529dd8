"""No request, however built, gets a 5xx: hypothesis fuzzes /invocations on a real model."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from docs.hostile_inputs import DOCUMENT, render

CONTENT_TYPES = ["application/json", "application/jsonlines", "text/csv", "text/plain", "text/plain; charset=utf-16",
                 "text/csv; charset=latin-1", "application/x-ndjson", "image/png", "", "text/plain; charset=idna"]
ACCEPTS = [None, "*/*", "text/csv", "application/jsonlines;q=0.5, text/*", "text/*;q=0", "garbage;;;q=x", ""]
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
                           lambda children: st.lists(children, max_size=4)
                           | st.dictionaries(st.sampled_from(["instances", "configuration", "k", "source", "x"]),
                                             children, max_size=4), max_leaves=12)
bodies = (st.binary(max_size=300) | st.text(max_size=300)
          | json_values.map(json.dumps)
          | st.lists(json_values.map(json.dumps), max_size=5).map("\n".join))
# What an HTTP header can carry (no CR or LF), with some Latin-1 beyond ASCII.
header_text = st.text(st.characters(min_codepoint=32, max_codepoint=255, exclude_characters="\x7f"), max_size=40)
attributes = st.none() | header_text | st.builds("k={}; threshold={}".format, header_text, header_text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies, content_type=st.sampled_from(CONTENT_TYPES) | header_text,
       accept=st.sampled_from(ACCEPTS) | header_text, attributes=attributes)
def test_invocations_never_answer_5xx(server, body, content_type, accept, attributes):
    response = server.post(body, content_type, accept, attributes)
    assert response.status_code < 500, (response.status_code, response.text[:300])
    if response.status_code >= 400:
        assert json.loads(response.content)["error"]


def test_the_hostile_input_document_is_current(server):
    assert render(server) == DOCUMENT.read_text(encoding="utf-8"), \
        "docs/hostile-inputs.md is stale: run `python docs/hostile_inputs.py --model-dir <a model>`"
