"""Requests that arrive together, computed together: concurrent comparisons of the same
checkpoints and methods share one forward pass and one VJP per checkpoint.

``Batcher.submit(key, item)`` blocks until ``item``'s result is ready. The first request of a key
leads: it waits up to ``window_s`` for others to join (less if the batch fills), takes up to
``max_batch`` waiting items, computes them in one ``compute(items)`` call and hands the lead to
the next request waiting, whose batch has meanwhile filled with what arrived during this one.
Items of different keys never share a batch, and batches of different keys run in parallel.

A batch that fails is computed again item by item, so that one request's error (a class its
image cannot explain, an output that is not finite) reaches that request alone.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

MAX_BATCH = 8  # images per forward pass (a classroom's burst fills it)
WINDOW_S = 0.01  # how long the first request of a burst waits for the others
SIZES_KEPT = 1000  # the batch sizes recorded (the latest)


@dataclass(eq=False)
class Slot:
    """One waiting request: its item, then its result or error, or the lead handed to it."""

    item: Any
    ready: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: BaseException | None = None
    leads: bool = False

    def outcome(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.result


class Batcher:
    """Gathers concurrent ``submit`` calls of one key into calls of ``compute(items) →
    results`` (one result per item, in order)."""

    def __init__(self, compute: Callable[[Sequence[Any]], Sequence[Any]],
                 max_batch: int = MAX_BATCH, window_s: float = WINDOW_S):
        self.compute, self.max_batch, self.window_s = compute, max_batch, window_s
        self._waiting: dict[Hashable, list[Slot]] = {}
        self._led: set[Hashable] = set()  # keys whose batch is gathering or running
        self._arrived = threading.Condition()
        self.sizes: list[int] = []  # the size of each batch computed (the benchmark reads it)

    def submit(self, key: Hashable, item: Any) -> Any:
        slot = Slot(item)
        with self._arrived:
            self._waiting.setdefault(key, []).append(slot)
            slot.leads = key not in self._led
            self._led.add(key)
            self._arrived.notify_all()
        if not slot.leads:
            slot.ready.wait()
            if not slot.leads:  # computed in another request's batch
                return slot.outcome()
        self._lead(key)
        return slot.outcome()

    def _lead(self, key: Hashable) -> None:
        """Gather, compute one batch, hand the lead on (or give it up when nobody waits)."""
        deadline = time.monotonic() + self.window_s
        with self._arrived:
            while len(self._waiting[key]) < self.max_batch:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._arrived.wait(left)
            batch = self._waiting[key][:self.max_batch]
            del self._waiting[key][:self.max_batch]
        try:
            self._compute(batch)
        finally:
            for slot in batch:
                if slot.result is None and slot.error is None:  # interrupted mid-batch
                    slot.error = RuntimeError("the computation was interrupted: try again")
                slot.leads = False
                slot.ready.set()
            with self._arrived:
                rest = self._waiting[key]
                if rest:
                    rest[0].leads = True
                    rest[0].ready.set()
                else:
                    del self._waiting[key]
                    self._led.discard(key)

    def _compute(self, batch: list[Slot]) -> None:
        self.sizes.append(len(batch))
        del self.sizes[:-SIZES_KEPT]  # a server's record stays bounded
        try:
            results = self.compute([slot.item for slot in batch])
        except Exception as error:
            if len(batch) == 1:
                batch[0].error = error
                return
            for slot in batch:  # each alone: its own result or its own error
                self._compute([slot])
            return
        for slot, result in zip(batch, results, strict=True):
            slot.result = result
