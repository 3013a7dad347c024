"""Handing pages from the threads that read them to the one that emits them.

A bounded queue between them keeps memory flat however large the read: a reading thread
waits while the emitting one is behind, and gives up once the emitting one has stopped.
"""

from __future__ import annotations

import queue
import threading
import typing as t

#: How often a waiting reader checks whether the emitting thread has stopped.
POLL_SECONDS = 0.2

Q = t.TypeVar("Q")


class Finished:
    """Follows a read's last page: nothing more will come for it."""


class Failed:
    """Reading raised ``error``; it is the read's last item."""

    def __init__(self, error: Exception) -> None:
        self.error = error


FINISHED = Finished()


def put_unless_stopped(into: queue.Queue[Q], item: Q, stop: threading.Event) -> bool:
    """Wait for room in ``into``, unless ``stop`` is set meanwhile (then False)."""
    while not stop.is_set():
        try:
            into.put(item, timeout=POLL_SECONDS)
        except queue.Full:
            continue
        return True
    return False
