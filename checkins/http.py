"""POST with retries: what scoring against an endpoint and webhooks share.

Connection failures, timeouts, 429 and 5xx are retried with exponential backoff (a server
restarting or scaling should not lose a report); any other answer is final.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass

RETRIED_STATUSES = {429, 500, 502, 503, 504}


class HttpError(RuntimeError):
    """A request that failed for good: a final status, or every attempt used up."""


@dataclass(frozen=True)
class Retry:
    """How often and how patiently to retry: waits of `backoff`, 2×, 4×… seconds, at most `max_wait`."""

    attempts: int = 5
    backoff: float = 0.5
    max_wait: float = 30.0
    timeout: float = 60.0


def post(url: str, body: bytes, headers: Mapping[str, str], retry: Retry | None = None,
         sleep: Callable[[float], None] = time.sleep, on_retry: Callable[[str], None] | None = None) -> bytes:
    """The body of a 2xx answer to POSTing `body` to `url`, retrying what is worth retrying."""
    retry = retry or Retry()
    last = ""
    for attempt in range(1, retry.attempts + 1):
        request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")
        try:
            with urllib.request.urlopen(request, timeout=retry.timeout) as response:
                return response.read()
        except urllib.error.HTTPError as error:
            detail = error.read()[:300].decode("utf-8", "replace")
            last = f"HTTP {error.code}: {detail}"
            if error.code not in RETRIED_STATUSES:
                raise HttpError(f"{url}: {last}") from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
            last = str(getattr(error, "reason", error))
        if attempt < retry.attempts:
            wait = min(retry.max_wait, retry.backoff * 2 ** (attempt - 1))
            if on_retry:
                on_retry(f"{url}: {last}; retry {attempt} of {retry.attempts - 1} in {wait:g} s")
            sleep(wait)
    raise HttpError(f"{url}: gave up after {retry.attempts} attempts; last: {last}")
