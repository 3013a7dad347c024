"""The fake Usersnap API (``fake_usersnap``) in its own process, steered over stdin.

The process is :mod:`benchmarks.fake_api`: ``fake_usersnap``'s benchmark mode plus a
count of the requests it receives, by kind (:meth:`FakeServer.requests`).

A separate process keeps the server's CPU and memory out of every client's measurement;
on two cores the server gets one while a client works. Pages are pre-rendered (or, for
the 200k-item memory run, rendered on request), so serving one costs a copy, not a
``json.dumps``. Closing its stdin stops it, so a crashed harness leaves nothing behind.
"""

from __future__ import annotations

import json
import select
import subprocess
import sys
import tempfile
import typing as t
from pathlib import Path

STARTUP_TIMEOUT_S = 300.0


class FakeServer:
    """``python -m benchmarks.fake_api --prerendered ...`` and its config."""

    def __init__(
        self,
        repo: Path,
        *,
        projects: int,
        per_project: int,
        item_bytes: int,
        eager: bool,
        latency_ms: float = 0.0,
    ) -> None:
        self.items = projects * per_project
        self.projects = projects
        # Lives as long as the server (closed in stop()), so no with-block.
        self._log = tempfile.TemporaryFile()  # noqa: SIM115
        command = [
            sys.executable,
            "-m",
            "benchmarks.fake_api",
            "--prerendered",
            "eager" if eager else "lazy",
            "--projects",
            str(projects),
            "--per-project",
            str(per_project),
            "--item-bytes",
            str(item_bytes),
            "--latency-ms",
            str(latency_ms),
        ]
        self._process = subprocess.Popen(
            command,
            cwd=repo,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            bufsize=1,
        )
        self.config: dict[str, t.Any] = self._read_answer(STARTUP_TIMEOUT_S)

    def set_latency(self, milliseconds: float) -> None:
        self._command(f"latency {milliseconds}")

    def cpu_seconds(self) -> float:
        """CPU the server has used so far (to show it stays out of the way)."""
        return float(self._command("cpu")["cpu_s"])

    def requests(self) -> dict[str, int]:
        """Requests the server has received so far: by kind, and ``total``."""
        return {kind: int(n) for kind, n in self._command("requests").items()}

    def stop(self) -> None:
        if self._process.stdin and not self._process.stdin.closed:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        if self._process.stdout:
            self._process.stdout.close()
        self._log.close()

    def __enter__(self) -> FakeServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _command(self, line: str) -> dict[str, t.Any]:
        assert self._process.stdin is not None
        self._process.stdin.write(line + "\n")
        self._process.stdin.flush()
        return self._read_answer(30.0)

    def _read_answer(self, timeout_s: float) -> dict[str, t.Any]:
        stdout = self._process.stdout
        assert stdout is not None
        ready, _, _ = select.select([stdout], [], [], timeout_s)
        line = stdout.readline() if ready else ""
        if not line:
            self._log.seek(0)
            log = self._log.read().decode("utf-8", "replace")[-2000:]
            self._process.kill()
            raise RuntimeError(f"the fake API did not answer:\n{log}")
        return t.cast("dict[str, t.Any]", json.loads(line))
