"""Keep the messages the model could not decide, for a person to label (`python -m model.review`).

`SENTIMENT_CAPTURE_URI` names the store: a local folder, or `s3://bucket/prefix`.
Each unrecognized message becomes one JSON line (`{"source": text, "guess": ...,
"probs": {...}, "model_version": ..., "time": ..., "request_id": ...}`) in files
`unrecognized-<start time>-<host>-<pid>-<n>.jsonl`, rotated by size and age.

Requests never wait for the store: they put lines on a bounded queue, and one
writer thread per server process appends them, a whole batch of complete lines
per write, to that process's own file, so several workers never interleave.
Every message is either written or counted as dropped (queue full, disk full,
store down), never lost silently: drops are logged as they start and then at
most once a minute, and each process logs its totals when it stops. A write
that fails is cut back off the file, so no line is ever torn. For S3 the file is
written to a local spool and uploaded when it rotates; files whose upload
failed, or that a killed worker left behind, are uploaded at the next rotation
of any worker.
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
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)
_STOP = object()
DROP_LOG_SECONDS = 60
WRITE_RETRY_SECONDS = 5  # after a failed write, batches are dropped (counted) for this long
STOP_UPLOAD_SECONDS = 8  # at shutdown, within gunicorn's 20 s graceful timeout


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
        self.written = self.dropped = 0
        # Optional observers (the metrics), called with each count as it happens.
        self.on_written: Callable[[int], None] | None = None
        self.on_dropped: Callable[[int], None] | None = None
        self._dropped_logged, self._drop_logged_at = 0, 0.0
        self._pid: int | None = None
        self._lock = threading.Lock()

    def put(self, records: list[dict]) -> None:
        """Queue records for writing; never blocks, never raises."""
        self._start_in_this_process()
        for record in records:
            try:
                self._queue.put_nowait(_line(record))
            except queue.Full:
                self._drop(1, "the capture queue is full")

    def close(self, timeout: float = 10) -> None:
        """Write what is queued, rotate (upload) the current file, stop the writer; log the totals."""
        if self._pid != os.getpid():
            return
        if self._writer.is_alive():
            self._queue.put(_STOP)
            self._writer.join(timeout)
        self._drop(self._queue.qsize(), "the writer did not finish in time")  # 0 when it did
        pending = len(self._spooled()) if self.s3_bucket else 0
        log.log(logging.WARNING if self.dropped or pending else logging.INFO,
                "capture: %d unrecognized messages written, %d dropped%s", self.written, self.dropped,
                f", {pending} spool files not uploaded yet in {self.folder}" if pending else "")

    def _start_in_this_process(self) -> None:
        # Threads do not survive gunicorn's fork: each worker starts its own writer on first use.
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid != os.getpid():
                self.written = self.dropped = self._dropped_logged = 0  # counts are per process
                self._queue: queue.Queue = queue.Queue(self.queue_size)
                self._writer = threading.Thread(target=self._write_loop, name="capture-writer", daemon=True)
                self._writer.start()
                self._pid = os.getpid()

    def _drop(self, count: int, why: str) -> None:
        if not count:
            return
        if self.on_dropped:
            self.on_dropped(count)
        with self._lock:  # request threads and the writer both drop
            self.dropped += count
            now = time.monotonic()
            # The first drop at once, then at most once a minute: not once per message.
            if self._dropped_logged and now - self._drop_logged_at < DROP_LOG_SECONDS:
                return
            self._dropped_logged, self._drop_logged_at, total = self.dropped, now, self.dropped
        log.warning("capture: dropped %d unrecognized messages so far (%s)", total, why)

    def _write_loop(self) -> None:
        file: _CaptureFile | None = None
        sequence, retry_at = 0, 0.0
        while True:
            batch, stop = self._next_batch()
            try:
                if file is not None and (file.size >= self.max_bytes or file.age >= self.max_seconds or stop):
                    file.close()
                    file = None
                    self._upload_spooled()
                if batch and time.monotonic() < retry_at:
                    self._drop(len(batch), "the store failed a moment ago")
                elif batch:
                    if file is None:
                        sequence += 1
                        file = _CaptureFile(self.folder, sequence)
                    file.append(b"".join(batch))
                    self.written += len(batch)
                    if self.on_written:
                        self.on_written(len(batch))
            except OSError as error:
                self._drop(len(batch), f"cannot write to {self.folder}: {error.strerror or error}")
                retry_at = time.monotonic() + WRITE_RETRY_SECONDS
                if file is not None:
                    file.discard_if_empty()
                    file = None
            except Exception:  # the writer must outlive anything: a dead writer would lose every later capture
                log.exception("capture: unexpected error in the writer; its batch is dropped")
                self._drop(len(batch), "unexpected error")
            if stop:
                if self.s3_bucket:
                    self._upload_spooled(deadline=time.monotonic() + STOP_UPLOAD_SECONDS)
                return

    def _next_batch(self) -> tuple[list[bytes], bool]:
        """Up to 1,000 queued lines (waiting at most a second for the first), and whether to stop."""
        try:
            item = self._queue.get(timeout=1)
        except queue.Empty:
            return [], False
        batch = []
        while item is not _STOP:
            batch.append(item)
            if len(batch) >= 1000:
                break
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
        return batch, item is _STOP

    def spool_files(self) -> int:
        """S3: how many files wait in the spool folder (being written or to upload)."""
        return len(list(self.folder.glob("unrecognized-*.jsonl")))

    def _spooled(self) -> list[Path]:
        """Closed spool files to upload: this process's, and those of processes no longer running."""
        files = []
        for path in sorted(self.folder.glob("unrecognized-*.jsonl")):
            pid = _pid_of(path)
            if pid != os.getpid() and _running(pid):
                continue  # another live worker's: it may still be writing it
            files.append(path)
        return files

    def _upload_spooled(self, deadline: float | None = None) -> None:
        """S3: upload the closed spool files (a local store has nothing to do: its files are in place)."""
        if not self.s3_bucket:
            return
        import boto3  # only S3 stores need it
        from botocore.config import Config

        # Bounded: an endpoint that never answers must not hold the writer, or SIGTERM, for long.
        client = boto3.client("s3", config=Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 1}))
        files = self._spooled()
        for done, path in enumerate(files):
            if deadline is not None and time.monotonic() > deadline:
                log.warning("capture: stopping with %d spool files not uploaded in %s", len(files) - done, self.folder)
                return
            key = f"{self.s3_prefix}/{path.name}" if self.s3_prefix else path.name
            try:
                client.upload_file(str(path), self.s3_bucket, key)
            except FileNotFoundError:
                continue  # another worker uploaded this orphan first
            except Exception as error:
                log.warning("capture: upload of %s to s3://%s/%s failed (%d files pending), will retry: %s",
                            path.name, self.s3_bucket, key, len(files) - done, error)
                return
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


class _CaptureFile:
    """One open capture file; a failed append is cut back off, so the file never holds a torn line."""

    def __init__(self, folder: Path, sequence: int):
        folder.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        self.path = folder / f"unrecognized-{stamp}-{socket.gethostname()}-{os.getpid()}-{sequence}.jsonl"
        self.stream = self.path.open("ab", buffering=0)  # unbuffered: a failed write can be cut back at once
        self.size, self.opened = 0, time.monotonic()

    @property
    def age(self) -> float:
        return time.monotonic() - self.opened

    def append(self, data: bytes) -> None:
        try:
            view = memoryview(data)  # complete lines only: readers never see half a line for long
            while view:
                view = view[self.stream.write(view):]
        except OSError:
            with contextlib.suppress(OSError):
                self.stream.truncate(self.size)
            raise
        self.size += len(data)

    def close(self) -> None:
        self.stream.close()

    def discard_if_empty(self) -> None:
        with contextlib.suppress(OSError):
            self.stream.close()
        if self.size == 0:
            with contextlib.suppress(OSError):
                self.path.unlink()


def _line(record: dict) -> bytes:
    """A record as one UTF-8 JSON line; text that UTF-8 cannot hold (a lone surrogate) is \\u-escaped."""
    try:
        return (json.dumps(record, ensure_ascii=False) + "\n").encode()
    except UnicodeEncodeError:
        return (json.dumps(record) + "\n").encode()


def _pid_of(path: Path) -> int | None:
    try:
        return int(path.stem.split("-")[-2])
    except (IndexError, ValueError):
        return None


def _running(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
