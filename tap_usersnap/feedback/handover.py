"""How reading threads hand pages to the one thread that emits them.

A reading thread puts each page in a bounded queue, then :data:`FINISHED` (or
:class:`Failed`); it gives up once the emitting thread has stopped, so none is left waiting
for room. While threads read, :func:`quick_switches` shortens the interpreter's switch
interval: the emitting thread writes records without pause, and a thread whose answer has
arrived would otherwise wait up to the default 5 ms for the GIL, at every socket read.
"""

from __future__ import annotations

import contextlib
import queue
import sys
import threading
import typing as t

#: How often a waiting reader checks whether the emitting thread has stopped.
POLL_SECONDS = 0.2
#: The switch interval while threads read ahead (the interpreter's default is 5 ms).
READING_SWITCH_SECONDS = 0.0005
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


def hand_over(pages: t.Iterable[Q], put: t.Callable[[Q | Finished | Failed], bool]) -> None:
    """Put every page, then FINISHED (or ``Failed(error)``); stop once ``put`` says False."""
    try:
        for page in pages:
            if not put(page):
                return
    except Exception as error:
        put(Failed(error))
    else:
        put(FINISHED)


class _SwitchInterval:
    """The interpreter's switch interval, short while any threaded read is under way."""

    def __init__(self) -> None:
        #: Reentrant: a read's generator may be finalised (and leave) while one enters.
        self._lock = threading.RLock()
        self._reads = 0
        self._saved = sys.getswitchinterval()

    @contextlib.contextmanager
    def short(self) -> t.Iterator[None]:
        """Shorten it on the first read in, restore it when the last read is out."""
        with self._lock:
            if self._reads == 0:
                self._saved = sys.getswitchinterval()
                sys.setswitchinterval(min(self._saved, READING_SWITCH_SECONDS))
            self._reads += 1
        try:
            yield
        finally:
            with self._lock:
                self._reads -= 1
                if self._reads == 0:
                    sys.setswitchinterval(self._saved)


quick_switches = _SwitchInterval().short
