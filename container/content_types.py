"""The content types `/invocations` reads and writes, and how a response type is chosen.

werkzeug parses the headers (`request.mimetype`, `mimetype_params`, `accept_mimetypes`
with q-values and wildcards); this module only knows our types and their aliases.
"""

from __future__ import annotations

from sagemaker_inference.content_types import CSV, JSON
from werkzeug.datastructures import MIMEAccept

JSONLINES = "application/jsonlines"
TEXT = "text/plain"

# Other names clients use for the same formats.
ALIASES = {
    "application/x-jsonlines": JSONLINES,
    "application/jsonl": JSONLINES,
    "application/x-ndjson": JSONLINES,
    "application/csv": CSV,
}

REQUEST_TYPES = (JSON, JSONLINES, CSV, TEXT)
RESPONSE_TYPES = (JSON, JSONLINES, CSV)


def canonical(mimetype: str) -> str:
    """'application/x-ndjson' -> 'application/jsonlines'; other types unchanged."""
    return ALIASES.get(mimetype, mimetype)


def default_response_type(request_type: str) -> str:
    """Line-based requests are answered line by line, so that batch transform's
    one output line per input line holds without an Accept header."""
    return {JSON: JSON, JSONLINES: JSONLINES, CSV: CSV, TEXT: JSONLINES}.get(request_type, JSON)


def negotiate(accept: MIMEAccept, default: str) -> str | None:
    """The response type for an Accept header, or None when the client refuses every one.

    An absent or empty header, or `*/*`, gives `default` (tried first, so it wins ties).
    """
    if not accept:
        return default
    candidates = [default, *(t for t in RESPONSE_TYPES if t != default), *ALIASES]
    match = accept.best_match(candidates)
    return canonical(match) if match else None
