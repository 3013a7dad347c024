"""Run the tap in-process or as a CLI and collect its Singer messages, for assertions."""

from __future__ import annotations

import contextlib
import contextvars
import copy
import dataclasses
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import typing as t
from pathlib import Path

from tap_usersnap.client import UsersnapError
from tap_usersnap.tap import TapUsersnap

if t.TYPE_CHECKING:
    from tap_usersnap.client import Clock

#: The clock in-process runs hand the tap (None: the real one); see :func:`injected_clock`.
_CLOCK: contextvars.ContextVar[Clock | None] = contextvars.ContextVar("clock", default=None)


@contextlib.contextmanager
def injected_clock(clock: Clock) -> t.Iterator[Clock]:
    """Every :func:`run_sync` inside hands the tap ``clock`` (retry waits in fake time)."""
    token = _CLOCK.set(clock)
    try:
        yield clock
    finally:
        _CLOCK.reset(token)


@dataclasses.dataclass
class SyncResult:
    """The messages of one run, sorted by kind."""

    messages: list[dict[str, t.Any]]
    stderr: str = ""
    returncode: int = 0
    stdout: str = ""
    #: The failure that ended an in-process run started with ``check=False``.
    error: UsersnapError | None = None

    def records(self, stream: str) -> list[dict[str, t.Any]]:
        """The records of one stream, in the order the tap printed them."""
        return [
            m["record"] for m in self.messages if m["type"] == "RECORD" and m["stream"] == stream
        ]

    def ids(self, stream: str = "feedback", key: str = "feedback_id") -> list[str]:
        """One field (the feedback id by default) of every record of a stream."""
        return [r[key] for r in self.records(stream)]

    @property
    def states(self) -> list[dict[str, t.Any]]:
        """Every STATE value, in order."""
        return [m["value"] for m in self.messages if m["type"] == "STATE"]

    @property
    def final_state(self) -> dict[str, t.Any]:
        """The last STATE value (the run must have printed one)."""
        return self.states[-1]

    def resume_state(self, previous: dict[str, t.Any] | None) -> dict[str, t.Any] | None:
        """The state to resume from: the last STATE printed, else the one this run got."""
        return self.states[-1] if self.states else previous

    def schema(self, stream: str) -> dict[str, t.Any]:
        """The SCHEMA message of a stream."""
        return next(m for m in self.messages if m["type"] == "SCHEMA" and m["stream"] == stream)

    @property
    def output(self) -> str:
        """Everything the run printed, for leak checks."""
        return "\n".join(json.dumps(m) for m in self.messages) + "\n" + self.stderr


def parse_messages(text: str) -> list[dict[str, t.Any]]:
    """Singer messages, one per line, split on newlines only.

    JSON may carry U+2028 and friends raw, which ``splitlines()`` would split on.
    """
    return [json.loads(line) for line in text.split("\n") if line.strip()]


def run_sync(
    config: dict[str, t.Any],
    state: dict[str, t.Any] | None = None,
    catalog: dict[str, t.Any] | None = None,
    *,
    check: bool = True,
) -> SyncResult:
    """Sync in this process (fast; lets tests patch sleeps and clocks).

    With ``check=False`` a :class:`UsersnapError` (what the CLI turns into exit code 1) is
    kept on the result with everything printed before it, instead of being raised.
    """
    buffer = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")  # the tap writes bytes
    tap = TapUsersnap(
        config=config, state=copy.deepcopy(state), catalog=catalog, clock=_CLOCK.get()
    )
    error: UsersnapError | None = None
    with contextlib.redirect_stdout(buffer):
        try:
            tap.sync_all()
        except UsersnapError as exc:
            if check:
                raise
            error = exc
    buffer.flush()
    output = buffer.buffer.getvalue().decode("utf-8")
    return SyncResult(parse_messages(output), returncode=int(bool(error)), error=error)


def bookmarks(state: dict[str, t.Any], key: str = "replication_key_value") -> dict[str, str]:
    """``{project_id: value}`` of the feedback stream's partitions (the bookmark, or ``key``)."""
    partitions = state.get("bookmarks", {}).get("feedback", {}).get("partitions", [])
    return {p["context"]["project_id"]: p.get(key) for p in partitions}


def _command(tmp: str, args: t.Sequence[str], config: dict | None, state: dict | None) -> list[str]:
    """The console script with ``args`` and, if given, config and state files in ``tmp``."""
    command = [str(Path(sys.executable).with_name("tap-usersnap")), *args]
    if config is not None:
        path = Path(tmp, "config.json")
        path.write_text(json.dumps(config))
        command += ["--config", str(path)]
    if state is not None:
        path = Path(tmp, "state.json")
        path.write_text(json.dumps(state))
        command += ["--state", str(path)]
    return command


def run_cli(
    *args: str,
    config: dict[str, t.Any] | None = None,
    state: dict[str, t.Any] | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> SyncResult:
    """Run the ``tap-usersnap`` console script as a user would."""
    with tempfile.TemporaryDirectory() as tmp:
        command = _command(tmp, args, config, state)
        completed = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **(env or {})},
            check=False,
        )
    informational = {"--about", "--discover"} & set(args)
    messages = [] if informational else parse_messages(completed.stdout)
    return SyncResult(messages, completed.stderr, completed.returncode, completed.stdout)


def run_cli_killed(
    *,
    after_lines: int,
    config: dict[str, t.Any],
    state: dict[str, t.Any] | None = None,
    timeout: float = 60,
) -> SyncResult:
    """Run the tap and SIGKILL it as soon as it has printed ``after_lines`` lines.

    The result holds exactly those lines: what a target had received at the instant of
    the kill (the tap flushes every message). Lines still in the pipe are dropped as if
    never delivered, which is the harder case for resuming, and keeps trials repeatable.
    If the tap finishes first, the result is the whole run.
    """
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryFile("w+") as stderr:
        process = subprocess.Popen(
            _command(tmp, [], config, state),
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        hung = threading.Event()

        def give_up() -> None:
            hung.set()
            process.kill()

        watchdog = threading.Timer(timeout, give_up)
        watchdog.start()
        lines: list[str] = []
        try:
            assert process.stdout is not None
            for line in process.stdout:
                lines.append(line)
                if len(lines) >= after_lines:
                    process.send_signal(signal.SIGKILL)
                    break
            process.stdout.close()
            returncode = process.wait()
        finally:
            watchdog.cancel()
        if hung.is_set():
            raise TimeoutError(f"the tap printed {len(lines)} lines, then hung for {timeout}s")
        stderr.seek(0)
        text = "".join(line for line in lines if line.endswith("\n"))
        return SyncResult(parse_messages(text), stderr.read(), returncode, text)
