"""Clients that send slowly cannot starve the others: /ping and real requests are answered meanwhile."""

from __future__ import annotations

import json
import socket
import threading
import time

import requests

HEAD = (b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"X-Padding: " + b"p" * 200 + b"\r\n")


class Tricklers:
    """`count` connections, each sending a request one byte every `interval` seconds, from one thread."""

    def __init__(self, port: int, count: int, request: bytes, interval: float = 0.5):
        self.sockets = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(count)]
        self.request, self.interval, self.sent = request, interval, 0
        self.closed_by_server = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        open_sockets = list(self.sockets)
        while open_sockets and not self.stopping.is_set() and self.sent < len(self.request):
            for sock in list(open_sockets):
                try:
                    sock.sendall(self.request[self.sent:self.sent + 1])
                except OSError:
                    open_sockets.remove(sock)
                    self.closed_by_server += 1
            self.sent += 1
            self.stopping.wait(self.interval)

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(10)
        for sock in self.sockets:
            sock.close()


def ping_times(url: str, count: int = 10) -> list[float]:
    times = []
    for _ in range(count):
        started = time.monotonic()
        assert requests.get(url + "/ping", timeout=2).status_code == 200
        times.append(time.monotonic() - started)
        time.sleep(0.1)
    return times


def test_200_clients_trickling_headers_do_not_block_pings_or_requests(fasttext_tree, start_server):
    server = start_server(fasttext_tree.model_dir, {"SENTIMENT_READ_TIMEOUT": "4"})
    slow = Tricklers(server.port, 200, HEAD)
    try:
        time.sleep(1)  # every connection has sent some bytes and waits for more
        assert max(ping_times(server.url)) < 2
        answer = requests.post(server.url + "/invocations", json=["a lovely day"], timeout=2)
        assert answer.status_code == 200
        # Past the read timeout the server hangs up on them (their sends then fail).
        deadline = time.monotonic() + 15
        while slow.closed_by_server < 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert slow.closed_by_server == 200
    finally:
        slow.stop()
    assert "did not arrive within 4 s" in server.log()


def test_a_small_body_sent_slowly_waits_without_a_thread_and_is_then_answered(fasttext_tree, start_server):
    server = start_server(fasttext_tree.model_dir, {"SENTIMENT_READ_TIMEOUT": "30"})
    body = json.dumps(["a lovely day"]).encode()
    request = HEAD + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    slow = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(50)]
    try:
        for sock in slow:
            sock.sendall(request[:-3])  # all but the last bytes of the body
        assert max(ping_times(server.url, 5)) < 2
        for sock in slow:
            sock.sendall(request[-3:])
        for sock in slow:
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
    finally:
        for sock in slow:
            sock.close()


def test_a_large_body_that_stalls_is_408(fasttext_tree, start_server):
    server = start_server(fasttext_tree.model_dir, {"SENTIMENT_READ_TIMEOUT": "2"})
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(HEAD + b"Content-Length: 1000000\r\n\r\n" + b"[" + b'"a",' * 30_000)  # then nothing
        answer = b""
        while chunk := sock.recv(65536):  # the server answers, then ends the connection
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"sent nothing for 2 s" in answer


def test_gunicorns_own_errors_are_json(fasttext_tree, start_server):
    server = start_server(fasttext_tree.model_dir)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"NOT A REQUEST LINE\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400") and b"application/json" in head and b"X-Request-Id" in head
    assert json.loads(body)["error"]
