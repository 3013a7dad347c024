"""SIGTERM and SIGINT mid-run: exit 128 plus the signal, with a safe STATE last."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
import time
import typing as t
from pathlib import Path

import pytest

from harness.reliability import (
    SEQUENTIAL,
    item_index,
    unsafe_states,
)
from harness.singer_run import SyncResult, bookmarks, parse_messages, run_sync

if t.TYPE_CHECKING:
    from fake_usersnap import FakeUsersnap


FILTER = r"POST .*/filter$"
TAP = str(Path(sys.executable).with_name("tap-usersnap"))


def run_interrupted(
    fake: FakeUsersnap, config: dict[str, t.Any], signum: signal.Signals, *, after_filters: int
) -> SyncResult:
    """Start the CLI, send ``signum`` once the fake has received ``after_filters`` filter
    requests (the last one stalls), and collect what the tap printed."""
    with tempfile.TemporaryDirectory() as tmp:
        config_path = Path(tmp, "config.json")
        config_path.write_text(json.dumps(config))
        out_path, err_path = Path(tmp, "stdout"), Path(tmp, "stderr")
        with out_path.open("w") as stdout, err_path.open("w") as stderr:
            process = subprocess.Popen(
                [TAP, "--config", str(config_path)], stdout=stdout, stderr=stderr
            )
            try:
                deadline = time.monotonic() + 60
                while len(fake.requests_to(FILTER)) < after_filters:
                    assert process.poll() is None, "the tap ended before the stall"
                    assert time.monotonic() < deadline, "the tap never reached the stall"
                    time.sleep(0.05)
                process.send_signal(signum)
                returncode = process.wait(timeout=30)
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait()
        text = out_path.read_text()
        return SyncResult(parse_messages(text), err_path.read_text(), returncode, text)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_mid_run_exits_128_plus_it_with_a_safe_state_last(
    fake: FakeUsersnap, signum: signal.Signals
) -> None:
    config = fake.config(**SEQUENTIAL)
    items = item_index(fake)
    fake.inject("stall", match=FILTER, skip=3, seconds=10)  # the second project's first page

    stopped = run_interrupted(fake, config, signum, after_filters=4)

    assert stopped.returncode == 128 + signum
    assert stopped.stdout.endswith("\n")
    last = json.loads(stopped.stdout.rstrip("\n").split("\n")[-1])
    assert last["type"] == "STATE"
    first_project = next(iter(fake.projects))
    assert sorted(stopped.ids()) == sorted(i["feedback_id"] for i in fake.feedback[first_project])
    assert bookmarks(last["value"]) == {
        first_project: max(i["created_at"] for i in fake.feedback[first_project])
    }
    assert f"Interrupted by signal {int(signum)}: stopped" in stopped.stderr
    assert "Traceback" not in stopped.stderr

    fake.clear_faults()
    resumed = run_sync(config, last["value"])

    assert set(stopped.ids()) | set(resumed.ids()) == fake.all_feedback_ids()
    expected = fake.all_feedback_ids()
    assert unsafe_states([stopped, resumed], items, expected) == []


def test_a_signal_while_a_slow_target_reads_leaves_every_line_whole(
    empty_fake: FakeUsersnap,
) -> None:
    """The target reads slowly, so the tap is blocked writing when SIGTERM comes: the
    handler writes nothing, the run stops between records, and its last line is a STATE."""
    fake = empty_fake
    for number in range(3):
        project = fake.add_project(f"Project {number}")
        for _ in range(300):
            fake.add_feedback(project["project_id"], custom_data={"note": "x" * 2000})
    with tempfile.TemporaryDirectory() as tmp:
        config_path = Path(tmp, "config.json")
        config_path.write_text(json.dumps(fake.config(concurrency=1)))
        process = subprocess.Popen(
            [TAP, "--config", str(config_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert process.stdout is not None
        first = process.stdout.read(4096)  # the pipe fills up behind this slow reader
        time.sleep(1.0)
        process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        rest = b""
        while chunk := process.stdout.read(8192):  # a slow target, 8 KB at a time
            rest += chunk
        process.stdout.close()
        returncode = process.wait(timeout=30)
    lines = (first + rest).decode().split("\n")
    assert lines[-1] == ""
    messages = [json.loads(line) for line in lines[:-1]]  # every line whole
    assert returncode == 128 + signal.SIGTERM
    assert messages[-1]["type"] == "STATE"
    delivered = [m["record"]["feedback_id"] for m in messages if m["type"] == "RECORD"]
    assert 0 < len(delivered) < 900
