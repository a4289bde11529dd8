"""Coalescer: concurrent calls share one pass, each caller gets its own items' results, errors reach all."""

from __future__ import annotations

import threading

import pytest
from support import wait_until

from model.lstm.coalescing import Coalescer


class Doubler:
    """A real function for the coalescer: doubles numbers, records each pass's size, and holds its
    first pass until released, so that calls pile up behind it."""

    def __init__(self, fail_on: int | None = None):
        self.passes: list[int] = []
        self.release = threading.Event()
        self.fail_on = fail_on

    def __call__(self, items: list[int]) -> list[int]:
        if not self.passes:
            self.release.wait(30)
        self.passes.append(len(items))
        if self.fail_on in items:
            raise ValueError(f"cannot double {self.fail_on}")
        return [2 * item for item in items]


def _call_all(coalescer: Coalescer, doubler: Doubler, requests: list[list[int]]) -> dict[int, object]:
    """Call once with requests[0], and with the others while that first pass is held."""
    answers: dict[int, object] = {}

    def ask(number: int) -> None:
        try:
            answers[number] = coalescer(requests[number])
        except ValueError as error:
            answers[number] = error

    threads = [threading.Thread(target=ask, args=(number,)) for number in range(len(requests))]
    threads[0].start()
    assert wait_until(lambda: coalescer._running, 10)
    for queued, thread in enumerate(threads[1:], 1):  # one at a time: the queue's order is theirs
        thread.start()
        assert wait_until(lambda queued=queued: len(coalescer._waiting) == queued, 10)
    doubler.release.set()
    for thread in threads:
        thread.join(30)
    return answers


def test_calls_waiting_behind_a_pass_share_the_next_one_and_get_their_own_results():
    doubler = Doubler()
    coalescer = Coalescer(doubler, max_items=100)
    requests = [[1], [2, 3], [4], [5, 6, 7], [8]]
    answers = _call_all(coalescer, doubler, requests)
    assert doubler.passes == [1, 7]  # the first alone, the four that waited in one pass
    assert answers == {n: [2 * item for item in items] for n, items in enumerate(requests)}
    assert coalescer([9]) == [18] and doubler.passes[-1] == 1  # a lone call runs at once


def test_a_pass_stops_growing_at_max_items_without_splitting_a_call():
    doubler = Doubler()
    coalescer = Coalescer(doubler, max_items=3)
    requests = [[1], [2, 3], [4], [5, 6, 7], [8]]
    answers = _call_all(coalescer, doubler, requests)
    assert doubler.passes == [1, 3, 3, 1]
    assert answers == {n: [2 * item for item in items] for n, items in enumerate(requests)}


@pytest.mark.parametrize("fail_on", [2, 8])
def test_an_error_reaches_every_call_of_its_pass_and_no_other(fail_on):
    doubler = Doubler(fail_on=fail_on)
    coalescer = Coalescer(doubler, max_items=2)
    answers = _call_all(coalescer, doubler, [[1], [2], [3], [8]])  # passes [1], [2, 3], [8]
    assert doubler.passes == [1, 2, 1]
    assert answers[0] == [2]
    if fail_on == 2:
        assert isinstance(answers[1], ValueError) and isinstance(answers[2], ValueError)
        assert answers[3] == [16]
    else:
        assert answers[1] == [4] and answers[2] == [6]
        assert isinstance(answers[3], ValueError)
    assert coalescer([5]) == [10]  # the coalescer goes on after a failed pass
