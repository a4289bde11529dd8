"""The content types `/invocations` reads and writes, and Content-Type / Accept parsing."""

from __future__ import annotations

from sagemaker_inference.content_types import ANY, CSV, JSON

JSONLINES = "application/jsonlines"
TEXT = "text/plain"

# Other names clients use for the same formats.
_ALIASES = {
    "application/x-jsonlines": JSONLINES,
    "application/jsonl": JSONLINES,
    "application/x-ndjson": JSONLINES,
    "application/csv": CSV,
}

REQUEST_TYPES = (JSON, JSONLINES, CSV, TEXT)
RESPONSE_TYPES = (JSON, JSONLINES, CSV)


def parse(header: str | None) -> tuple[str, dict[str, str]]:
    """'Text/CSV; charset=UTF-8' -> ('text/csv', {'charset': 'utf-8'})."""
    mime, _, rest = (header or "").partition(";")
    params = {}
    for part in rest.split(";"):
        key, _, value = part.partition("=")
        if key.strip():
            params[key.strip().lower()] = value.strip().strip('"').lower()
    mime = mime.strip().lower()
    return _ALIASES.get(mime, mime), params


def negotiate(accept: str | None, default: str) -> str | None:
    """The response type to use for an Accept header, or None when none can be given.

    Honours q-values and wildcards (`*/*`, `application/*`); an absent or empty
    header, or `*/*`, gives `default`.
    """
    if not accept or not accept.strip():
        return default
    ranked = []
    for position, item in enumerate(accept.split(",")):
        mime, params = parse(item)
        try:
            quality = float(params.get("q", "1"))
        except ValueError:
            quality = 0.0
        if mime and quality > 0:
            ranked.append((-quality, position, mime))
    for _, _, mime in sorted(ranked):
        if mime == ANY:
            return default
        if mime.endswith("/*"):
            family = mime[:-1]
            if default.startswith(family):
                return default
            match = next((t for t in RESPONSE_TYPES if t.startswith(family)), None)
            if match:
                return match
        elif mime in RESPONSE_TYPES:
            return mime
    return None


def default_response_type(request_type: str) -> str:
    """Line-based requests are answered line by line, so that batch transform's
    one output line per input line holds without an Accept header."""
    return {JSON: JSON, JSONLINES: JSONLINES, CSV: CSV, TEXT: JSONLINES}.get(request_type, JSON)
