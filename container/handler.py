"""Serving as four replaceable functions, the pattern of AWS's sagemaker-inference toolkit.

    model_fn(model_dir)                -> model
    input_fn(request_body, content_type) -> data
    predict_fn(data, model)            -> prediction
    output_fn(prediction, accept)      -> response body, or (body, content_type)

Any of them defined in the user's `/opt/ml/model/code/inference.py` (or the file
named by `SAGEMAKER_PROGRAM`) replaces ours; the others stay ours. A function
that has a parameter named `context` also gets the `RequestContext`.
"""

from __future__ import annotations

import importlib.util
import inspect
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

from sagemaker_inference.errors import GenericInferenceToolkitError

from container import content_types, formats
from container.capture import CaptureStore
from container.environment import ConfigurationError, ServingSettings
from model import predictor
from model.predictor import Prediction, Predictor
from model.threshold import UNRECOGNIZED, parse_threshold, sentiment

log = logging.getLogger(__name__)
FUNCTIONS = ("model_fn", "input_fn", "predict_fn", "output_fn")


@dataclass
class RequestContext:
    """Per-request facts besides the body: SageMaker's custom attributes header, parsed, the
    request's id, and the confidence threshold below which a message is unrecognized."""

    custom_attributes: dict[str, str] = field(default_factory=dict)
    request_id: str = ""
    threshold: float = 0.0


def default_model_fn(model_dir: str) -> Predictor:
    return predictor.load(model_dir)


def default_input_fn(request_body: bytes, content_type: str, context: RequestContext | None = None
                     ) -> formats.InferenceRequest:
    attributes = context.custom_attributes if context else {}
    k = formats.parse_k(attributes["k"], "custom attribute k") if "k" in attributes else 1
    return formats.decode(request_body, content_type, default_k=k)


def default_predict_fn(data: formats.InferenceRequest, model: Predictor,
                       context: RequestContext | None = None) -> list[Prediction]:
    # One batched call with the largest k asked for, then each text cut to its own k.
    predictions = model.predict(data.texts, k=max(data.ks))
    return [Prediction(p.labels[:k], p.probs[:k]) for p, k in zip(predictions, data.ks)]


def default_output_fn(prediction: list[Prediction], accept: str,
                      context: RequestContext | None = None) -> tuple[bytes, str]:
    threshold = context.threshold if context else 0.0
    return formats.encode([formats.record(p, threshold) for p in prediction], accept), accept


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
        self.capture = CaptureStore(settings.capture_uri, settings.capture_max_bytes,
                                    settings.capture_max_seconds) if settings.capture_uri else None

    def invoke(self, body: bytes, content_type: str | None, accept: str | None,
               context: RequestContext) -> tuple[bytes, str]:
        """Run input_fn, predict_fn, output_fn; errors meant for the client are GenericInferenceToolkitError."""
        request_type, _ = content_types.parse(content_type)
        response_type = self._response_type(request_type, accept)
        attribute = context.custom_attributes.get("threshold")
        try:
            context.threshold = self.threshold if attribute is None else parse_threshold(attribute)
        except ValueError as error:
            raise formats.bad_request(f"custom attribute threshold {error}") from None
        data = self._input(context, body, content_type or "")
        prediction = self._predict(context, data, self.model)
        if self.capture and isinstance(data, formats.InferenceRequest):
            self._capture_unrecognized(data.texts, prediction, context)
        result = self._output(context, prediction, response_type)
        body_out, out_type = result if isinstance(result, tuple) else (result, response_type)
        return body_out if isinstance(body_out, bytes) else str(body_out).encode(), out_type

    def _capture_unrecognized(self, texts: list[str], predictions: list, context: RequestContext) -> None:
        if not all(isinstance(p, Prediction) for p in predictions):
            return  # a user predict_fn with its own output: nothing we can judge
        chosen = [(text, p) for text, p in zip(texts, predictions)
                  if sentiment(p.labels[0], p.probs[0], context.threshold) == UNRECOGNIZED]
        if not chosen:
            return
        # The reviewer sees every label's probability, not just the k the client asked for.
        full = self.model.predict([text for text, _ in chosen], k=len(self.model.labels))
        now = datetime.now(UTC).isoformat(timespec="milliseconds")
        self.capture.put([{"source": text, "guess": p.labels[0], "confidence": round(p.probs[0], 6),
                           "probs": {label: round(prob, 6) for label, prob in zip(all_.labels, all_.probs)},
                           "threshold": context.threshold, "model_version": self.manifest.get("model_version", "-"),
                           "time": now, "request_id": context.request_id}
                          for (text, p), all_ in zip(chosen, full)])

    def _response_type(self, request_type: str, accept: str | None) -> str:
        default = self.settings.default_accept or content_types.default_response_type(request_type)
        if self.output_fn is not default_output_fn:
            return accept or default  # the user's output_fn decides what it can write
        chosen = content_types.negotiate(accept, default)
        if chosen is None:
            raise GenericInferenceToolkitError(
                406, f"Accept {accept!r} cannot be served; use one of {', '.join(content_types.RESPONSE_TYPES)}")
        return chosen


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
