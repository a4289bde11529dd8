"""Request bodies -> texts, and predictions -> response bodies, for every content type.

Requests (Content-Type, parameters such as `; charset=utf-8` accepted):
- application/json: BlazingText's `{"instances": ["text", ...], "configuration": {"k": 2}}`,
  or a bare string, or a list of strings
- application/jsonlines: one `{"source": "text", "k": 2}` (or a bare JSON string) a line
- text/csv: one text a record (an unquoted comma stays part of the text)
- text/plain: one text a line

Responses keep BlazingText's shape, one record per text, in order, and add the
product's verdict: `{"label": ["__label__positive"], "prob": [0.97],
"sentiment": "positive", "confidence": 0.97}`, where sentiment is "unrecognized"
when the confidence is below the threshold; as a JSON list, as JSON lines, or as
CSV rows `sentiment,confidence,label,prob[,label,prob...]`. Each record is made
from one `Answer`, which the default predict_fn derives from one model call.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from sagemaker_inference.errors import GenericInferenceToolkitError

from container import content_types
from model.datasets import LABEL_PREFIX
from model.predictor import Prediction
from model.threshold import sentiment


@dataclass
class InferenceRequest:
    """What the default input_fn gives predict_fn: the texts, and how many labels each wants."""

    texts: list[str]
    ks: list[int]


@dataclass(frozen=True)
class Answer(Prediction):
    """A Prediction cut to the k labels asked for, with the verdict and every label's probability.

    `sentiment` is the top label, or "unrecognized" below the threshold; `every_label`
    maps each label to its probability (what a reviewer of a captured message sees).
    """

    sentiment: str = ""
    every_label: dict[str, float] = field(default_factory=dict)

    @property
    def confidence(self) -> float:
        return self.probs[0]


def answer(prediction: Prediction, threshold: float, k: int | None = None) -> Answer:
    """`prediction` (most probable label first) as an Answer, cut to `k` labels (None: as given).

    An Answer is returned as it is: the verdict is worked out once per text.
    """
    if isinstance(prediction, Answer):
        return prediction
    labels, probs = prediction.labels, prediction.probs
    return Answer(labels[:k], probs[:k], sentiment(labels[0], probs[0], threshold), dict(zip(labels, probs)))


def answers(predictions: Sequence[Prediction], ks: Sequence[int], threshold: float) -> list[Answer]:
    return [answer(p, threshold, k) for p, k in zip(predictions, ks)]


def bad_request(message: str) -> GenericInferenceToolkitError:
    return GenericInferenceToolkitError(400, message)


def parse_custom_attributes(header: str | None) -> dict[str, str]:
    """`X-Amzn-SageMaker-Custom-Attributes: k=2; threshold=0.9` -> {"k": "2", "threshold": "0.9"}.

    Items without `=` are ignored: the header is free-form and other tools use it too.
    """
    attributes = {}
    for item in (header or "").replace(",", ";").split(";"):
        key, sep, value = item.partition("=")
        if sep and key.strip():
            attributes[key.strip().lower()] = value.strip()
    return attributes


MAX_K = 2**31 - 1


def parse_k(value: object, where: str) -> int:
    """A label count from JSON or a header: a whole number from 1 to MAX_K (ASCII digits only)."""
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdecimal() and len(value.strip()) < 12:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_K:
        raise bad_request(f"{where} must be a whole number from 1 to {MAX_K}, got {str(value)[:40]!r}")
    return value


def decode(body: bytes, mime: str, charset: str = "utf-8", default_k: int = 1) -> InferenceRequest:
    """Parse a request body of media type `mime` (canonical, see content_types);
    raise a 400/415 GenericInferenceToolkitError saying what is wrong."""
    if mime not in content_types.REQUEST_TYPES:
        raise GenericInferenceToolkitError(
            415, f"Content-Type {mime or '(none)'!r} is not supported; "
                 f"use one of {', '.join(content_types.REQUEST_TYPES)}")
    text = _text(body, charset)
    if mime == content_types.JSON:
        texts, ks = _json(text, default_k)
    elif mime == content_types.JSONLINES:
        texts, ks = _jsonlines(text, default_k)
    else:
        texts = _csv(text) if mime == content_types.CSV else _lines(text)
        ks = [default_k] * len(texts)
    if not texts:
        raise bad_request("the request holds no texts")
    return InferenceRequest(texts, ks)


def _text(body: bytes, charset: str) -> str:
    try:
        return body.decode(charset)
    except LookupError:  # unknown, or not a text encoding (base64, zlib)
        raise GenericInferenceToolkitError(415, f"charset {charset[:40]!r} is not supported; use utf-8") from None
    except UnicodeDecodeError as error:
        raise bad_request(f"the body is not valid {charset} text (byte {error.start})") from None
    except Exception as error:  # codecs such as punycode fail in their own ways on bad bytes
        raise bad_request(f"the body is not valid {charset} text ({type(error).__name__})") from None


def _loads(text: str, where: str) -> object:
    """json.loads, with every way it can fail on a client's text as a 400 naming `where`."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise bad_request(f"{where}invalid JSON: {error}") from None
    except RecursionError:
        raise bad_request(f"{where}JSON nested too deeply") from None


def _check_unicode(text: str, where: str) -> None:
    """JSON's \\u escapes can carry a lone surrogate, which is no character: refuse it here
    rather than fail in the model or the capture store."""
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as error:
            raise bad_request(f"{where} holds a lone surrogate (\\u{ord(text[error.start]):04x}); "
                              "send valid Unicode") from None


def _json(text: str, default_k: int) -> tuple[list[str], list[int]]:
    data = _loads(text, "")
    k = default_k
    if isinstance(data, dict):
        if "instances" not in data:
            raise bad_request('a JSON object must have "instances": ["text", ...]')
        configuration = data.get("configuration") or {}
        if not isinstance(configuration, dict):
            raise bad_request('"configuration" must be an object such as {"k": 2}')
        if "k" in configuration:
            k = parse_k(configuration["k"], "configuration.k")
        data = data["instances"]
    if isinstance(data, str):
        data = [data]
    if not isinstance(data, list):
        raise bad_request('expected "instances" to be a list of strings')
    for index, item in enumerate(data):
        if not isinstance(item, str):
            raise bad_request(f"instances[{index}] is not a string: {json.dumps(item)[:80]}")
        _check_unicode(item, f"instances[{index}]")
    return data, [k] * len(data)


def _jsonlines(text: str, default_k: int) -> tuple[list[str], list[int]]:
    texts, ks = [], []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        record = _loads(line, f"line {number}: ")
        if isinstance(record, str):
            record = {"source": record}
        if not isinstance(record, dict) or not isinstance(record.get("source"), str):
            raise bad_request(f'line {number}: expected {{"source": "text"}}, got {line[:80]}')
        _check_unicode(record["source"], f"line {number}: source")
        texts.append(record["source"])
        ks.append(parse_k(record["k"], f"line {number}: k") if "k" in record else default_k)
    return texts, ks


def _csv(text: str) -> list[str]:
    try:
        return [",".join(row) for row in csv.reader(io.StringIO(text, newline=""))]
    except csv.Error as error:
        raise bad_request(f"invalid CSV: {error}") from None


def _lines(text: str) -> list[str]:
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline ends the last line, it does not start a new one
    return [line.rstrip("\r") for line in lines]


def record(answer: Answer) -> dict:
    """One text's response record: BlazingText's shape, plus sentiment and confidence."""
    return {"label": [LABEL_PREFIX + label for label in answer.labels],
            "prob": [round(p, 6) for p in answer.probs],
            "sentiment": answer.sentiment,
            "confidence": round(answer.confidence, 6)}


def encode(records: list[dict], accept: str) -> bytes:
    """Serialize response records as `accept` (one of content_types.RESPONSE_TYPES)."""
    if accept == content_types.JSON:
        return json.dumps(records).encode()
    if accept == content_types.JSONLINES:
        return "".join(json.dumps(r) + "\n" for r in records).encode()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for r in records:
        writer.writerow([r["sentiment"], r["confidence"], *(v for pair in zip(r["label"], r["prob"]) for v in pair)])
    return out.getvalue().encode()
