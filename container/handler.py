"""Serving as four replaceable functions, the pattern of AWS's sagemaker-inference toolkit.

    model_fn(model_dir)                -> model
    input_fn(request_body, content_type) -> data
    predict_fn(data, model)            -> prediction
    output_fn(prediction, accept)      -> response body, or (body, content_type)

Any of them defined in the user's `/opt/ml/model/code/inference.py` (or the file
named by `SAGEMAKER_PROGRAM`) replaces ours; the others stay ours. A function
that has a parameter named `context` also gets the `RequestContext`.

A request's headers are parsed once (`Handler.context`), its texts predicted once
(every label's probability), and each text's k labels, verdict and capture record
derived from that one result (`formats.Answer`).
"""

from __future__ import annotations

import functools
import importlib.util
import inspect
import logging
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

from sagemaker_inference.errors import GenericInferenceToolkitError
from werkzeug.datastructures import MIMEAccept
from werkzeug.http import parse_accept_header, parse_options_header

from container import content_types, formats
from container.capture import CaptureStore
from container.environment import ConfigurationError, ServingSettings
from container.metrics import Metrics
from model import combiner, predictor
from model.predictor import Prediction, Predictor
from model.threshold import UNRECOGNIZED, parse_threshold

log = logging.getLogger(__name__)
FUNCTIONS = ("model_fn", "input_fn", "predict_fn", "output_fn")
CUSTOM_ATTRIBUTES = "X-Amzn-SageMaker-Custom-Attributes"
CUSTOM_ATTRIBUTES_KEY = "HTTP_X_AMZN_SAGEMAKER_CUSTOM_ATTRIBUTES"  # the header in a WSGI environ


@dataclass
class RequestContext:
    """One invocation's facts besides its body, parsed once from its headers by `Handler.context`.

    request_type: the Content-Type's media type, aliases resolved ("text/csv"); charset: its
    charset parameter; response_type: what the answer is written as, chosen from Accept; k:
    labels per text unless the body says otherwise; threshold: confidence below which a
    message is unrecognized; custom_attributes: SageMaker's custom attributes header, parsed;
    encoder_seconds: how long a sentence encoder may take on the request (a longer one is
    answered without it: model/combiner.py's `for_request`).
    """

    request_type: str = ""
    charset: str = "utf-8"
    response_type: str = content_types.JSON
    k: int = 1
    threshold: float = 0.0
    request_id: str = ""
    custom_attributes: dict[str, str] = field(default_factory=dict)
    encoder_seconds: float = 10.0


def default_model_fn(model_dir: str) -> Predictor:
    return predictor.load(model_dir)


def default_input_fn(request_body: bytes, content_type: str, context: RequestContext) -> formats.InferenceRequest:
    # The header was parsed once, into the context; `content_type` is the raw header for user code.
    return formats.decode(request_body, context.request_type, context.charset, default_k=context.k)


def default_predict_fn(data: formats.InferenceRequest, model: Predictor,
                       context: RequestContext) -> list[formats.Answer]:
    chosen = combiner.for_request(model, data.texts, context.encoder_seconds)
    if chosen is not model:
        log.info("request %s: %d messages, more than the sentence encoder reads in %.1f s: answered without it",
                 context.request_id, len(data.texts), context.encoder_seconds)
    # One batched call for every label's probability: each text's k labels, its verdict and
    # its capture record all come from it.
    predictions = chosen.predict(data.texts, k=len(chosen.labels))
    return formats.answers(predictions, data.ks, context.threshold)


def default_output_fn(prediction: list[formats.Answer], accept: str, context: RequestContext) -> tuple[bytes, str]:
    return formats.encode([formats.record(answer) for answer in prediction], accept), accept


class Handler:
    """The model, loaded once, and the four functions that answer an invocation."""

    def __init__(self, settings: ServingSettings):
        self.settings = settings
        user = _user_module(settings)
        chosen = {name: getattr(user, name, None) or globals()[f"default_{name}"] for name in FUNCTIONS}
        self.user_functions = [name for name in FUNCTIONS if user is not None and hasattr(user, name)]
        self.model_fn, self.input_fn, self.predict_fn, self.output_fn = (chosen[name] for name in FUNCTIONS)
        # Whether each takes `context` is decided here once, not on every request.
        self._input, self._predict, self._output = (
            _with_context(f) for f in (self.input_fn, self.predict_fn, self.output_fn))
        self.model = self.model_fn(str(settings.model_dir))
        self.manifest = getattr(self.model, "manifest", None) or {}
        recorded = (self.manifest.get("threshold") or {}).get("value", 0.0)
        # SENTIMENT_THRESHOLD overrides the model's; a request's custom attribute overrides both.
        self.threshold = settings.threshold if settings.threshold is not None else recorded
        # What a sentence encoder may take of a request: each of a worker's request threads may be running
        # such a request on its one core, with room to spare.
        self.encoder_seconds = settings.timeout / (settings.threads + 2)
        self.capture = CaptureStore(settings.capture_uri, settings.capture_max_bytes,
                                    settings.capture_max_seconds) if settings.capture_uri else None
        spool = self.capture.spool_files if self.capture and self.capture.s3_bucket else None
        self.metrics = Metrics(spool) if settings.metrics else None
        if self.metrics and self.capture:
            self.capture.on_written, self.capture.on_dropped = self.metrics.captured.inc, self.metrics.dropped.inc

    def context(self, environ: Mapping[str, str], request_id: str) -> RequestContext:
        """Parse a request's headers (from its WSGI environ, the cheapest read), once; a client's
        mistake raises a 4xx GenericInferenceToolkitError."""
        accept = environ.get("HTTP_ACCEPT", "")
        request_type, charset, response_type = self._types(environ.get("CONTENT_TYPE", ""), accept)
        if response_type is None:
            raise GenericInferenceToolkitError(406, f"Accept {accept!r} cannot be served; "
                                                    f"use one of {', '.join(content_types.RESPONSE_TYPES)}")
        attributes = formats.parse_custom_attributes(environ.get(CUSTOM_ATTRIBUTES_KEY))
        k = formats.parse_k(attributes["k"], "custom attribute k") if "k" in attributes else 1
        try:
            threshold = parse_threshold(attributes["threshold"]) if "threshold" in attributes else self.threshold
        except ValueError as error:
            raise formats.bad_request(f"custom attribute threshold {error}") from None
        return RequestContext(request_type, charset, response_type, k, threshold, request_id, attributes,
                              self.encoder_seconds)

    @functools.lru_cache(maxsize=512)  # noqa: B019 (one Handler per process; clients repeat the same headers)
    def _types(self, content_type: str, accept: str) -> tuple[str, str, str | None]:
        """(request type, charset, response type or None when Accept refuses them all) of two headers."""
        mimetype, params = parse_options_header(content_type)
        request_type = content_types.canonical(mimetype.lower())
        default = self.settings.default_accept or content_types.default_response_type(request_type)
        if self.output_fn is not default_output_fn:
            response_type = accept or default  # the user's output_fn decides what it can write
        else:
            response_type = content_types.negotiate(parse_accept_header(accept, MIMEAccept), default)
        return request_type, params.get("charset", "utf-8"), response_type

    def invoke(self, body: bytes, content_type: str, context: RequestContext) -> tuple[bytes, str]:
        """Run input_fn, predict_fn, output_fn; errors meant for the client are GenericInferenceToolkitError."""
        data = self._input(context, body, content_type)
        prediction = self._predict(context, data, self.model)
        if isinstance(data, formats.InferenceRequest) and _all_predictions(prediction, data.texts):
            if self.predict_fn is not default_predict_fn:
                # A user predict_fn's Predictions get their verdict here, once, for capture and output alike.
                prediction = [formats.answer(p, context.threshold) for p in prediction]
            if self.capture:
                self._capture_unrecognized(data.texts, prediction, context)
            if self.metrics:
                self.metrics.count_answers(answer.sentiment for answer in prediction)
        result = self._output(context, prediction, context.response_type)
        body_out, out_type = result if isinstance(result, tuple) else (result, context.response_type)
        return body_out if isinstance(body_out, bytes) else str(body_out).encode(), out_type

    def _capture_unrecognized(self, texts: list[str], answers: list[formats.Answer], context: RequestContext) -> None:
        # Capture follows the server's threshold, not a request's: a client sending threshold=1
        # changes its own answers but cannot fill the store with every message it sends.
        chosen = [(text, a) for text, a in zip(texts, answers)
                  if a.sentiment == UNRECOGNIZED and a.confidence < self.threshold]
        if not chosen:
            return
        now = datetime.now(UTC).isoformat(timespec="milliseconds")
        version = self.manifest.get("model_version", "-")
        self.capture.put([{"source": text, "guess": a.labels[0], "confidence": round(a.confidence, 6),
                           "probs": {label: round(prob, 6) for label, prob in a.every_label.items()},
                           "threshold": self.threshold, "model_version": version,
                           "time": now, "request_id": context.request_id}
                          for text, a in chosen])


def _all_predictions(prediction: object, texts: list[str]) -> bool:
    """Whether predict_fn gave one Prediction per text (a user's may give anything else)."""
    return (isinstance(prediction, list) and len(prediction) == len(texts)
            and all(isinstance(p, Prediction) for p in prediction))


def _with_context(function: Callable) -> Callable:
    """`function` as f(context, *args): given the context only if it has a parameter named so."""
    if "context" in inspect.signature(function).parameters:
        return lambda context, *args: function(*args, context=context)
    return lambda context, *args: function(*args)


def _user_module(settings: ServingSettings) -> ModuleType | None:
    """Import the user's inference code from the model's `code/` folder, if there is any."""
    path = settings.code_dir / settings.program
    if path.suffix != ".py":
        path = path.with_suffix(".py")
    if not path.exists():
        if settings.program_set:
            raise ConfigurationError(f"SAGEMAKER_PROGRAM={settings.program!r} but {path} does not exist")
        return None
    sys.path.insert(0, str(settings.code_dir))  # so the user's module can import its neighbours
    spec = importlib.util.spec_from_file_location(Path(path).stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    log.info("user code %s defines %s", path, [n for n in FUNCTIONS if hasattr(module, n)] or "none of "
             + ", ".join(FUNCTIONS))
    return module
