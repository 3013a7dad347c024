"""A clock for the tap whose waits pass at once (see :func:`harness.singer_run.injected_clock`)."""

from __future__ import annotations


class FakeClock:
    """Stands in for the tap's clock: a wait is recorded and passes at once."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.waits: list[float] = []

    def sleep(self, seconds: float) -> None:
        """Record the wait and move the clock on by it, without sleeping."""
        self.waits.append(seconds)
        self.now += seconds

    def monotonic(self) -> float:
        """The fake time: 1000.0 plus every wait so far."""
        return self.now
