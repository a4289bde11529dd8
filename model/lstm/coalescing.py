"""Concurrent calls in one process run as one: the requests a worker's threads answer at the same
moment share one forward pass (the dynamic batching of TorchServe and Triton, without their timer).

A call made while another runs waits for that run to end, then goes in the next one with every
call that waited meanwhile. A lone call runs at once and pays nothing; a waiting call waits at
most for the run in progress. The wait is the batching window: it needs no clock of its own.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any


class _Call:
    __slots__ = ("done", "error", "items", "leads", "results")

    def __init__(self, items: Sequence[Any]):
        self.items = items
        self.results: Any = None
        self.error: BaseException | None = None
        self.leads = False  # runs the next pass itself, for itself and the calls waiting then
        self.done = threading.Event()


class Coalescer:
    """`function` over the items of concurrent calls together.

    Args: function, a list of N items -> N results (a sequence or an array's rows, in order);
    max_items, the most items one pass takes (a call's own items are never split). Call with
    a sequence of items; returns their results, as `function(items)` would.
    """

    def __init__(self, function: Callable[[list], Any], max_items: int):
        self._function = function
        self._max_items = max_items
        self._lock = threading.Lock()
        self._waiting: deque[_Call] = deque()
        self._running = False

    def __call__(self, items: Sequence[Any]) -> Any:
        call = _Call(items)
        with self._lock:
            if self._running:
                self._waiting.append(call)
            else:
                self._running = call.leads = True
        if not call.leads:
            call.done.wait()  # for a result, or for the turn to lead
        if call.leads:
            self._run(call)
        if call.error is not None:
            raise call.error
        return call.results

    def _run(self, leader: _Call) -> None:
        with self._lock:
            calls, count = [leader], len(leader.items)
            while self._waiting and count + len(self._waiting[0].items) <= self._max_items:
                calls.append(self._waiting.popleft())
                count += len(calls[-1].items)
        try:
            results = self._function([item for call in calls for item in call.items])
            start = 0
            for call in calls:
                call.results = results[start:start + len(call.items)]
                start += len(call.items)
        except BaseException as error:  # every call of the pass hears of it
            for call in calls:
                call.error = error
        with self._lock:  # hand the next pass to the longest-waiting call, or stop
            successor = self._waiting.popleft() if self._waiting else None
            if successor is None:
                self._running = False
            else:
                successor.leads = True
        for call in calls[1:]:
            call.done.set()
        if successor is not None:
            successor.done.set()
