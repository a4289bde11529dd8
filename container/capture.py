"""Keep the messages the model could not decide, for a person to label (`python -m model.review`).

`SENTIMENT_CAPTURE_URI` names the store: a local folder, or `s3://bucket/prefix`.
Each unrecognized message becomes one JSON line (`{"source": text, "guess": ...,
"probs": {...}, "model_version": ..., "time": ..., "request_id": ...}`) in files
`unrecognized-<start time>-<host>-<pid>-<n>.jsonl`, rotated by size and age.

Requests never wait for the store: they put lines on a bounded queue, and one
writer thread per server process appends them, a whole batch of complete lines
per write, to that process's own file, so several workers never interleave.
When the queue is full or the store is down, lines are dropped, counted and
logged. For S3 the file is written locally and uploaded when it rotates; an
upload that fails is retried at the next rotation.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import socket
import tempfile
import threading
import time
from pathlib import Path

log = logging.getLogger(__name__)
_STOP = object()


class CaptureStore:
    """Append JSON records to rotated files in a folder or on S3, off the request path."""

    def __init__(self, uri: str, max_bytes: int = 16 << 20, max_seconds: float = 300, queue_size: int = 10_000):
        self.uri, self.max_bytes, self.max_seconds, self.queue_size = uri, max_bytes, max_seconds, queue_size
        if uri.startswith("s3://"):
            bucket, _, prefix = uri[len("s3://"):].partition("/")
            if not bucket:
                raise ValueError(f"SENTIMENT_CAPTURE_URI={uri!r} names no bucket")
            self.s3_bucket, self.s3_prefix = bucket, prefix.strip("/")
            self.folder = Path(tempfile.gettempdir()) / "sentiment-capture-spool"
        else:
            self.s3_bucket = None
            self.folder = Path(uri)
        self.dropped = 0
        self._pid: int | None = None
        self._lock = threading.Lock()

    def put(self, records: list[dict]) -> None:
        """Queue records for writing; never blocks, never raises."""
        self._start_in_this_process()
        for record in records:
            try:
                self._queue.put_nowait(json.dumps(record, ensure_ascii=False) + "\n")
            except queue.Full:
                self._drop(1, "the capture queue is full")

    def close(self, timeout: float = 10) -> None:
        """Write what is queued, rotate (upload) the current file, stop the writer."""
        if self._pid == os.getpid() and self._writer.is_alive():
            self._queue.put(_STOP)
            self._writer.join(timeout)

    def _start_in_this_process(self) -> None:
        # Threads do not survive gunicorn's fork: each worker starts its own writer on first use.
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid != os.getpid():
                self._queue: queue.Queue = queue.Queue(self.queue_size)
                self._writer = threading.Thread(target=self._write_loop, name="capture-writer", daemon=True)
                self._writer.start()
                self._pid = os.getpid()

    def _drop(self, count: int, why: str) -> None:
        with self._lock:  # request threads and the writer both drop
            before = self.dropped
            self.dropped += count
        # Log the first drop and then at each power of two, not once per message.
        if before == 0 or (self.dropped.bit_length() > before.bit_length()):
            log.warning("capture: dropped %d unrecognized messages so far (%s)", self.dropped, why)

    def _write_loop(self) -> None:
        sequence, file, opened, size = 0, None, 0.0, 0
        while True:
            try:
                item = self._queue.get(timeout=1)
            except queue.Empty:
                item = None
            batch = [] if item in (None, _STOP) else [item]
            while item is not _STOP and len(batch) < 1000:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is not _STOP:
                    batch.append(item)
            if file is not None and (size >= self.max_bytes or time.time() - opened >= self.max_seconds
                                     or item is _STOP):
                file.close()
                file = None
                self._upload_closed_files()
            if batch:
                try:
                    if file is None:
                        sequence += 1
                        file, opened, size = self._open(sequence), time.time(), 0
                    data = "".join(batch).encode()
                    file.write(data)  # one write of complete lines: readers never see half a line
                    file.flush()
                    size += len(data)
                except OSError as error:
                    self._drop(len(batch), f"cannot write to {self.folder}: {error.strerror or error}")
                    if file is not None:
                        with contextlib.suppress(OSError):  # the writer thread must outlive a bad disk
                            file.close()
                        file = None
            if item is _STOP:
                self._upload_closed_files()
                return

    def _open(self, sequence: int):
        self.folder.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        name = f"unrecognized-{stamp}-{socket.gethostname()}-{os.getpid()}-{sequence}.jsonl"
        return (self.folder / name).open("ab")

    def _upload_closed_files(self) -> None:
        """S3: upload this process's closed files, the ones that failed before too (a local
        store has nothing to do: its files are already in place)."""
        if not self.s3_bucket:
            return
        import boto3  # only S3 stores need it

        client = boto3.client("s3")
        for path in sorted(self.folder.glob(f"unrecognized-*-{os.getpid()}-*.jsonl")):
            key = f"{self.s3_prefix}/{path.name}" if self.s3_prefix else path.name
            try:
                client.upload_file(str(path), self.s3_bucket, key)
                path.unlink()
            except Exception as error:
                log.warning("capture: upload of %s to s3://%s/%s failed, will retry: %s",
                            path.name, self.s3_bucket, key, error)
                return
