"""The HTTP side of `serve`: Flask routes behind gunicorn, on SageMaker's port.

Request path: gunicorn -> `create_app` routes -> `Handler.context` (the headers,
parsed once) -> `Handler.invoke` (input_fn, predict_fn, output_fn) -> the
predictor loaded once in the master process,
before the workers fork, so they share it and /ping can only answer once it is
there.
"""

from __future__ import annotations

import contextlib
import hmac
import itertools
import json
import logging
import os
import socket
import sys
import time
import traceback

from flask import Flask, Response, g, request
from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger
from gunicorn.http.errors import ParseException
from sagemaker_inference.errors import BaseInferenceToolkitError
from werkzeug.exceptions import BadRequest, HTTPException, RequestEntityTooLarge, RequestTimeout

from container import content_types
from container.environment import ConfigurationError, ServingSettings
from container.handler import Handler
from container.metrics import Metrics, mark_process_dead
from container.worker import ArrivedRequestWorker
from model.threads import limit_math_threads

log = logging.getLogger("container.server")
REQUEST_ID_KEY = "sentiment.request_id"  # in the WSGI environ, for the answer and any error answer


def json_error(status: int, message: str) -> Response:
    """An error as JSON, with the request's id (or a new one: every response carries one)."""
    return Response(json.dumps({"error": message}), status=status, mimetype=content_types.JSON,
                    headers={"X-Request-Id": request.environ.setdefault(REQUEST_ID_KEY, new_request_id())})


def new_request_id() -> str:
    """32 hex digits, unique across workers: a random prefix drawn once per process, then a count
    (os.urandom on every request was a system call, and with it a GIL hand-off, per request)."""
    global _id_prefix, _id_pid
    if _id_pid != os.getpid():  # a forked worker draws its own prefix
        _id_prefix, _id_pid = os.urandom(8).hex(), os.getpid()
    return f"{_id_prefix}{next(_id_count):016x}"


_id_prefix, _id_pid, _id_count = "", 0, itertools.count()


def read_body(environ: dict, limit: int, timeout: float) -> bytes:
    """The whole body, or 413 when it is longer than `limit`, with or without Content-Length;
    408 when the client stalls for `timeout` seconds while sending it.

    A chunked body has no length up front (gunicorn decodes the chunks): read one byte past
    the limit, so that a longer one is refused rather than silently cut.
    """
    stream, sock = environ["wsgi.input"], environ.get("gunicorn.socket")
    declared = environ.get("CONTENT_LENGTH")
    if declared and declared.isdigit() and int(declared) > limit:
        raise RequestEntityTooLarge()
    if sock is not None:
        sock.settimeout(timeout)  # a client that stops sending must not hold this thread
    try:
        body = stream.read(int(declared)) if declared else stream.read(limit + 1)
    except TimeoutError:
        _stop_reading(sock)
        raise RequestTimeout(f"the client sent nothing for {timeout} s while sending the body") from None
    except (OSError, ValueError, ParseException) as error:
        _stop_reading(sock)
        raise BadRequest(f"the body could not be read ({type(error).__name__}); "
                         "check its Content-Length or chunked encoding") from None
    finally:
        if sock is not None:
            sock.settimeout(None)
    if len(body) > limit:
        raise RequestEntityTooLarge()
    return body


def _stop_reading(sock: socket.socket | None) -> None:
    """End a connection whose body cannot be read, once the answer is sent: gunicorn ignores an
    app's `Connection: close`, and would wait for the rest of the body before the next request."""
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RD)


def create_app(handler: Handler) -> Flask:
    """The WSGI app answering /ping, /invocations and /execution-parameters."""
    settings = handler.settings
    app = Flask(__name__)

    # No automatic OPTIONS: nothing here is for browsers, and it answered 200 to anything.
    @app.get("/ping", provide_automatic_options=False)
    def ping() -> Response:
        # The handler exists only once its model has loaded, so reaching here means healthy.
        return Response(status=200)

    @app.post("/invocations", provide_automatic_options=False)
    def invocations() -> Response:
        environ = request.environ
        environ[REQUEST_ID_KEY] = request_id = new_request_id()  # first: an error answer carries it too
        context = handler.context(environ, request_id)
        body = read_body(environ, settings.max_payload_bytes, settings.read_timeout)
        body, content_type = handler.invoke(body, environ.get("CONTENT_TYPE", ""), context)
        return Response(body, status=200, content_type=content_type, headers={"X-Request-Id": request_id})

    @app.get("/execution-parameters", provide_automatic_options=False)
    def execution_parameters() -> Response:
        return Response(json.dumps({
            "MaxConcurrentTransforms": settings.max_concurrent_transforms,
            "BatchStrategy": settings.batch_strategy,
            "MaxPayloadInMB": settings.max_payload_mb,
        }), mimetype=content_types.JSON)

    if handler.metrics:  # first: its clock starts before a token is checked
        _serve_metrics(app, handler.metrics)
    if settings.api_token:
        _require_token(app, settings.api_token)

    @app.errorhandler(BaseInferenceToolkitError)
    def client_error(error: BaseInferenceToolkitError) -> Response:
        return json_error(error.status_code, error.message)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        if error.code == 413:
            return json_error(413, f"the body exceeds {settings.max_payload_bytes:,} bytes "
                                   f"({settings.max_payload_mb} MB); split the request")
        return json_error(error.code or 500, error.description or error.name)

    @app.errorhandler(Exception)
    def server_error(error: Exception) -> Response:
        # The body names only the kind of fault: its message may hold the request's texts.
        request_id = request.environ.setdefault(REQUEST_ID_KEY, new_request_id())
        log.error("invocation %s failed:\n%s", request_id, _traceback(error))
        return json_error(500, f"internal error ({type(error).__name__}); "
                               f"the traceback is in the log under request {request_id}")

    return app


def _require_token(app: Flask, token: str) -> None:
    """Self-hosting: every path but /ping needs `Authorization: Bearer <SENTIMENT_API_TOKEN>`
    (SageMaker authenticates callers with IAM and needs none)."""
    expected = f"Bearer {token}".encode()

    @app.before_request
    def check_token() -> Response | None:
        if request.path == "/ping":
            return None
        given = request.headers.get("Authorization", "").encode("utf-8", "replace")
        if hmac.compare_digest(given, expected):  # constant time: no hint from how long it took
            return None
        response = json_error(401, "this endpoint needs the header Authorization: Bearer <token>")
        response.headers["WWW-Authenticate"] = "Bearer"
        return response


def _serve_metrics(app: Flask, metrics: Metrics) -> None:
    """Self-hosting: GET /metrics, and every request counted and timed."""

    @app.before_request
    def start_clock() -> None:
        g.started = time.perf_counter()

    @app.after_request
    def count(response: Response) -> Response:
        metrics.request(request.path, response.status_code, time.perf_counter() - g.get("started", 0.0))
        return response

    @app.get("/metrics", provide_automatic_options=False)
    def scrape() -> Response:
        body, content_type = metrics.render()
        return Response(body, content_type=content_type)


def _traceback(error: Exception, limit: int = 300) -> str:
    """The traceback, with the error's own message cut to `limit` characters (it may echo
    every text of the request)."""
    lines = traceback.format_exception(error)
    lines[-1] = lines[-1][:limit].rstrip() + ("…\n" if len(lines[-1]) > limit else "\n")
    return "".join(lines).rstrip()


class AccessLogger(Logger):
    """gunicorn's access log, one short line a request, with its id, and none for a healthy /ping
    (SageMaker pings constantly).

    `client "METHOD /path PROTOCOL" status bytes seconds request-id`. gunicorn's own line,
    built from a dictionary of two dozen fields, cost a sixth of a worker's time per request.
    """

    def access(self, resp, req, environ, request_time) -> None:
        status = str(getattr(resp, "status", "")).partition(" ")[0]
        if status == "200" and environ.get("PATH_INFO") == "/ping":
            return
        self.access_log.info('%s "%s %s %s" %s %s %.6f %s', environ.get("REMOTE_ADDR", "-"),
                             environ.get("REQUEST_METHOD"), environ.get("RAW_URI"), environ.get("SERVER_PROTOCOL"),
                             status, getattr(resp, "sent", "-"), request_time.total_seconds(),
                             environ.get(REQUEST_ID_KEY, "-"))


class Server(BaseApplication):
    """gunicorn configured from ServingSettings, serving an already loaded app."""

    def __init__(self, app: Flask, handler: Handler):
        self.app, self.handler, self.settings = app, handler, handler.settings
        super().__init__()

    def load_config(self) -> None:
        s = self.settings
        ArrivedRequestWorker.read_timeout = s.read_timeout  # set before the workers fork
        for name, value in {
            "bind": f"{s.host}:{s.port}",
            "workers": s.workers,
            # Threads keep keep-alive connections cheap and let a slow request not
            # block the worker's heartbeat, so long batches are not killed at `timeout`;
            # a connection gets a thread only once its request has arrived (slow clients).
            "worker_class": ArrivedRequestWorker,
            "threads": s.threads,
            "timeout": s.timeout,
            "graceful_timeout": 20,  # SageMaker sends SIGKILL 30 s after SIGTERM
            "keepalive": 75,
            "backlog": 2048,
            "worker_connections": 2000,
            "loglevel": s.log_level.lower(),
            "accesslog": "-",
            "errorlog": "-",
            "logger_class": AccessLogger,
            "worker_tmp_dir": "/dev/shm",
            "control_socket_disable": True,  # would need a writable $HOME; nothing here uses it
            "limit_request_field_size": 16384,
            "post_fork": _limit_math_threads(s.math_threads),
            "worker_exit": _flush_capture(self.handler),
            "child_exit": lambda server, worker: mark_process_dead(worker.pid),
        }.items():
            self.cfg.set(name, value)

    def load(self) -> Flask:
        return self.app


def _limit_math_threads(threads: int):
    """gunicorn's post_fork hook: size every math library's thread pool in the new worker, and say so."""
    def post_fork(server, worker) -> None:
        chosen = limit_math_threads(threads)
        log.info("worker %d: math thread pools: %s", worker.pid, "; ".join(chosen) or "none loaded")
    return post_fork


def _flush_capture(handler: Handler):
    """gunicorn's worker_exit hook: write the worker's queued captures before it exits."""
    def worker_exit(server, worker) -> None:
        if handler.capture:
            handler.capture.close()
    return worker_exit


def main() -> int:
    """`serve`: load the model, then serve it until SIGTERM."""
    try:
        settings = ServingSettings.from_env()
    except ConfigurationError as error:
        print(f"serve: {error}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level, stream=sys.stdout,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Our loggers carry their own level: importing chainer (numpy.distutils, through
    # setuptools' distutils) resets the root logger to WARNING, which muted them.
    for name in ("container", "model"):
        logging.getLogger(name).setLevel(settings.log_level)
    started = time.monotonic()
    try:
        handler = Handler(settings)
    except Exception as error:  # the reason must reach the log, SageMaker shows nothing else
        log.exception("cannot load the model from %s", settings.model_dir)
        print(f"serve: cannot load the model from {settings.model_dir}: {error}", file=sys.stderr)
        return 1
    log.info("model %s (%s) loaded from %s in %.2f s; threshold %.4f; user functions: %s",
             handler.manifest.get("model_version", "-"), handler.manifest.get("algorithm", "custom"),
             settings.model_dir, time.monotonic() - started, handler.threshold, handler.user_functions or "none")
    if handler.capture:
        log.info("capturing unrecognized messages (threshold %.4f) to %s", handler.threshold, settings.capture_uri)
    try:
        Server(create_app(handler), handler).run()
    finally:
        if handler.metrics:
            handler.metrics.close()
    return 0
