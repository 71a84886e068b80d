"""A hand-off slot between two pipeline stages that keeps only the newest item.

Why not queue.Queue(maxsize=1): a full Queue blocks (or rejects) the *new* item, so a slow stage
would keep working on ever older frames. Here the producer never waits: the oldest item is
dropped and counted, so latency stays bounded and the app can show how many frames were lost.
"""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

T = TypeVar("T")


class QueueClosed(Exception):
    """Raised by `LatestQueue.get` once the queue is closed and empty (the stage should stop)."""


class LatestQueue(Generic[T]):
    """Bounded queue (default one item) that drops the oldest item when full."""

    def __init__(self, maxsize: int = 1) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize must be >= 1, got {maxsize}")
        self.maxsize = maxsize
        self._items: list[T] = []
        self._cond = threading.Condition()
        self._dropped = 0
        self._closed = False

    @property
    def dropped(self) -> int:
        """How many items were thrown away because a newer one arrived first."""
        with self._cond:
            return self._dropped

    @property
    def closed(self) -> bool:
        with self._cond:
            return self._closed

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)

    def put(self, item: T, wait: bool = False) -> int:
        """Add `item`; returns how many old items it pushed out (0 or more).

        By default the producer never waits and the oldest item goes. `wait=True` instead waits
        for room (for offline runs that must not lose frames), giving up only when closed.
        Items put after `close()` are dropped silently (and not counted): the consumer is gone.
        """
        with self._cond:
            if wait:
                self._cond.wait_for(lambda: len(self._items) < self.maxsize or self._closed)
            if self._closed:
                return 0
            self._items.append(item)
            pushed_out = max(0, len(self._items) - self.maxsize)
            if pushed_out:
                del self._items[:pushed_out]
                self._dropped += pushed_out
            self._cond.notify_all()
            return pushed_out

    def get(self, timeout: float | None = None) -> T:
        """The oldest kept item; waits up to `timeout` s (None: forever).

        Raises TimeoutError when nothing arrived in time and QueueClosed once closed and empty.
        """
        with self._cond:
            if not self._cond.wait_for(lambda: self._items or self._closed, timeout=timeout):
                raise TimeoutError("no item arrived in time")
            if self._items:
                item = self._items.pop(0)
                self._cond.notify_all()  # a waiting producer may go on
                return item
            raise QueueClosed()

    def clear(self) -> int:
        """Drop everything waiting (not counted as dropped frames); returns how many."""
        with self._cond:
            n = len(self._items)
            self._items.clear()
            return n

    def close(self) -> None:
        """Wake every waiting consumer; later gets raise QueueClosed once the queue is empty."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
