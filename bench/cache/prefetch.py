"""Run a producer a few items ahead of its consumer, in a background thread.

Used to read cached batches from a memory-mapped store while the previous step computes: the
reads (page faults, copies) release the GIL, so the only time the training loop waits is when
the disk is slower than the step.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")
U = TypeVar("U")

_DONE = object()


class _Failure:
    def __init__(self, exc: BaseException):
        self.exc = exc


def prefetched(make: Callable[[T], U], items: Sequence[T], depth: int = 4) -> Iterator[U]:
    """Yield make(item) for each item, in order, producing up to `depth` items ahead.

    An exception in `make` is raised in the consumer at the item that failed. Closing the
    generator early (break, garbage collection) stops the thread.
    """
    if depth <= 0:
        yield from (make(item) for item in items)
        return
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(value: object) -> bool:
        while not stop.is_set():
            try:
                q.put(value, timeout=0.1)
                return True
            except queue.Full:
                continue  # the consumer is busy: wait, but notice a stop
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(make(item)):
                    return
        except BaseException as exc:  # handed to the consumer, which re-raises it
            put(_Failure(exc))
            return
        put(_DONE)

    thread = threading.Thread(target=produce, name="cache-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            value = q.get()
            if value is _DONE:
                return
            if isinstance(value, _Failure):
                raise value.exc
            yield value  # type: ignore[misc]
    finally:
        stop.set()
        thread.join()
