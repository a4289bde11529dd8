"""gunicorn's gthread worker, with a thread only for requests that have arrived, and JSON errors.

gthread hands a connection to one of its few threads as soon as it has any
byte, and the thread then reads the rest with blocking calls and no time limit:
16 clients sending their headers slowly made half the /pings time out, 200 made
them all (SageMaker fails an instance whose /ping does not answer in 2 s). Here a
connection gets a thread only once its whole request head, and its body when
that is small, is in the socket's buffer (looked at with MSG_PEEK); until then it
waits in the worker's poller, at no thread's cost, and a client that has not sent
it within the read timeout is disconnected. Larger bodies are read by the app
with the same timeout on each read (`container.server.read_body`).

gunicorn's own error pages (bad request line, headers too large) are HTML; ours
are JSON everywhere, so they are written as `{"error": ...}` too.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import time

from gunicorn import util
from gunicorn.workers import gthread

READ_TIMEOUT_ENV = "SENTIMENT_READ_TIMEOUT"
PEEK_BYTES = 64 * 1024  # a request up to this size must have fully arrived before it gets a thread
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)
_CHUNKED = re.compile(rb"\r\ntransfer-encoding:[^\r\n]*chunked", re.IGNORECASE)


class ArrivedRequestWorker(gthread.ThreadWorker):
    """gthread that gives a connection a thread only once its request has arrived (see the module)."""

    read_timeout = 10.0  # set from ServingSettings by container.server.Server

    def handle(self, conn):
        # Bytes gunicorn already read ahead belong to the next request: let it go on.
        if conn.parser is None or not conn.parser.unreader.buf.getvalue():
            arrived = request_arrived(conn.sock)
            if not arrived:
                started = getattr(conn, "waiting_since", None) or time.monotonic()
                if time.monotonic() - started > self.read_timeout:
                    self.log.info("closing a connection whose request did not arrive within %.0f s",
                                  self.read_timeout)
                    # Shut it here: gunicorn's graceful close would linger up to 2 s on the
                    # worker's main thread, draining what this client still trickles in.
                    with contextlib.suppress(OSError):
                        conn.sock.shutdown(socket.SHUT_RDWR)
                    return False
                conn.waiting_since = started
                return gthread._DEFER  # back to the poller until more bytes come
        conn.waiting_since = None
        return super().handle(conn)

    def init_process(self) -> None:
        util.write_error = write_json_error  # gunicorn's one writer of its own error answers
        super().init_process()


def request_arrived(sock: socket.socket) -> bool:
    """Whether a whole request head, and its body if the request is small, waits in `sock`'s buffer.

    True also when the connection is closed or failed: gunicorn then meets that itself.
    """
    try:
        data = sock.recv(PEEK_BYTES, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return False
    except OSError:
        return True
    if not data or len(data) >= PEEK_BYTES:
        return True
    head_end = data.find(b"\r\n\r\n")
    if head_end < 0:
        return False
    head, body = data[:head_end], data[head_end + 4:]
    if _CHUNKED.search(head):
        return body.startswith(b"0\r\n") or b"\r\n0\r\n" in body  # the last chunk has come
    length = _CONTENT_LENGTH.search(head)
    return length is None or len(body) >= int(length.group(1)) or head_end + 4 + int(length.group(1)) > PEEK_BYTES


def write_json_error(sock: socket.socket, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's util.write_error, answering JSON instead of an HTML page."""
    body = json.dumps({"error": f"{reason}: {mesg}" if mesg else reason}).encode()
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"X-Request-Id: {os.urandom(16).hex()}\r\nContent-Length: {len(body)}\r\n\r\n").encode("latin-1")
    util.write_nonblock(sock, head + body)
