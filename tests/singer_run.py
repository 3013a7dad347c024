"""Run the tap in-process or as a CLI and collect its Singer messages, for assertions."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import io
import json
import os
import subprocess
import sys
import tempfile
import typing as t
from pathlib import Path

from tap_usersnap.tap import TapUsersnap


@dataclasses.dataclass
class SyncResult:
    """The messages of one run, sorted by kind."""

    messages: list[dict[str, t.Any]]
    stderr: str = ""
    returncode: int = 0
    stdout: str = ""

    def records(self, stream: str) -> list[dict[str, t.Any]]:
        return [
            m["record"] for m in self.messages if m["type"] == "RECORD" and m["stream"] == stream
        ]

    def ids(self, stream: str = "feedback", key: str = "feedback_id") -> list[str]:
        return [r[key] for r in self.records(stream)]

    @property
    def states(self) -> list[dict[str, t.Any]]:
        return [m["value"] for m in self.messages if m["type"] == "STATE"]

    @property
    def final_state(self) -> dict[str, t.Any]:
        return self.states[-1]

    def schema(self, stream: str) -> dict[str, t.Any]:
        return next(m for m in self.messages if m["type"] == "SCHEMA" and m["stream"] == stream)

    @property
    def output(self) -> str:
        """Everything the run printed, for leak checks."""
        return "\n".join(json.dumps(m) for m in self.messages) + "\n" + self.stderr


def parse_messages(text: str) -> list[dict[str, t.Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def run_sync(
    config: dict[str, t.Any],
    state: dict[str, t.Any] | None = None,
    catalog: dict[str, t.Any] | None = None,
) -> SyncResult:
    """Sync in this process (fast; lets tests patch sleeps and clocks)."""
    buffer = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")  # the tap writes bytes
    tap = TapUsersnap(config=config, state=copy.deepcopy(state), catalog=catalog)
    with contextlib.redirect_stdout(buffer):
        tap.sync_all()
    buffer.flush()
    return SyncResult(parse_messages(buffer.buffer.getvalue().decode("utf-8")))


def bookmarks(state: dict[str, t.Any]) -> dict[str, str]:
    """``{project_id: replication_key_value}`` of the feedback stream's partitions."""
    partitions = state["bookmarks"]["feedback"].get("partitions", [])
    return {p["context"]["project_id"]: p.get("replication_key_value") for p in partitions}


def run_cli(
    *args: str,
    config: dict[str, t.Any] | None = None,
    state: dict[str, t.Any] | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> SyncResult:
    """Run the ``tap-usersnap`` console script as a user would."""
    with tempfile.TemporaryDirectory() as tmp:
        command = [str(Path(sys.executable).with_name("tap-usersnap")), *args]
        if config is not None:
            path = Path(tmp, "config.json")
            path.write_text(json.dumps(config))
            command += ["--config", str(path)]
        if state is not None:
            path = Path(tmp, "state.json")
            path.write_text(json.dumps(state))
            command += ["--state", str(path)]
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
