"""Run one client as a child process and measure it alone: wall, CPU, peak RSS, records.

CPU and peak RSS come from the kernel's accounting of that child (``os.wait4``), so the
fake server and this harness never count against it. Its stdout is a pipe this process
drains in large reads, counting lines and Singer RECORD messages on the fly (nothing is
kept), so a client that drops records is caught without slowing it down.

One Linux subtlety: a child's ``ru_maxrss`` starts at its parent's peak RSS (the kernel
carries the old address space's high-water mark over ``exec``), so the harness must stay
small; :func:`harness_peak_rss_mb` lets the report check that it did.
"""

from __future__ import annotations

import dataclasses
import os
import resource
import subprocess
import tempfile
import threading
import time
import typing as t
from pathlib import Path

READ_SIZE = 1 << 20
#: A RECORD message's type field, with and without the space json.dumps puts after ":".
RECORD_MARKERS = (b'"type":"RECORD"', b'"type": "RECORD"')


@dataclasses.dataclass
class Measurement:
    """What one run of one client cost."""

    wall_s: float
    cpu_s: float
    user_s: float
    sys_s: float
    peak_rss_mb: float
    lines: int
    record_messages: int
    returncode: int
    stderr_tail: str = ""
    server_cpu_s: float | None = None
    others_cpu_s: float | None = None
    #: The requests the fake API received during the run, by kind and ``total``.
    requests: dict[str, int] | None = None

    @property
    def ok(self) -> bool:
        return self.returncode == 0


class _OutputCounter:
    """Counts newlines and RECORD markers across chunk boundaries."""

    def __init__(self) -> None:
        self.lines = 0
        self.records = 0
        self._tail = b""
        self._keep = max(len(marker) for marker in RECORD_MARKERS) - 1

    def feed(self, chunk: bytes) -> None:
        self.lines += chunk.count(b"\n")
        joined = self._tail + chunk
        # A marker that ends inside the kept tail was already counted in the last chunk.
        self.records += sum(joined.count(marker) for marker in RECORD_MARKERS)
        self.records -= sum(self._tail.count(marker) for marker in RECORD_MARKERS)
        self._tail = joined[-self._keep :]


def run_measured(
    command: list[str],
    *,
    cwd: str | None = None,
    env: dict[str, str] | None = None,
    timeout_s: float = 900.0,
) -> Measurement:
    """Run ``command`` to the end, draining its stdout; measure only that process."""
    counter = _OutputCounter()
    with tempfile.TemporaryFile() as stderr:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, cwd=cwd, env=env)
        assert process.stdout is not None
        watchdog = threading.Timer(timeout_s, process.kill)
        watchdog.start()
        fd = process.stdout.fileno()
        while chunk := os.read(fd, READ_SIZE):
            counter.feed(chunk)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        watchdog.cancel()
        process.returncode = os.waitstatus_to_exitcode(status)
        process.stdout.close()
        stderr.seek(0)
        tail = stderr.read()[-2000:].decode("utf-8", "replace")
    return Measurement(
        wall_s=wall,
        cpu_s=usage.ru_utime + usage.ru_stime,
        user_s=usage.ru_utime,
        sys_s=usage.ru_stime,
        peak_rss_mb=usage.ru_maxrss / 1024,
        lines=counter.lines,
        record_messages=counter.records,
        returncode=process.returncode,
        stderr_tail=tail if process.returncode else "",
    )


def machine_busy_seconds() -> float | None:
    """CPU time all cores spent busy since boot (``/proc/stat``), or None off Linux.

    Minus what the client, the server and the harness used, what is left over during a run
    is everyone else's: other processes and kernel work. A large figure means the run was
    disturbed (the machine is shared) and its wall time is suspect.
    """
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return None
    ticks = [int(field) for field in fields]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
    guest = sum(ticks[8:10])  # already counted in user and nice
    return (sum(ticks) - idle - guest) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def harness_peak_rss_mb() -> float:
    """This process's peak RSS: the floor under every child's measured peak."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def merged_env(extra: t.Mapping[str, str] | None = None) -> dict[str, str]:
    return {**os.environ, **(extra or {})}
