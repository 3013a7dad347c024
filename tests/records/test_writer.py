"""The buffered msgspec writer: records buffered, STATE flushed, odd text still written,
a target that stops reading told in one line."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import subprocess
import sys
import typing as t
from pathlib import Path

import pytest
from singer_sdk import Tap
from singer_sdk.singerlib import RecordMessage, StateMessage
from typing_extensions import override

from harness.reliability import secrets_in
from harness.singer_run import parse_messages, run_sync
from tap_usersnap.http.errors import OutputClosedError, UsersnapError
from tap_usersnap.records.writer import BROKEN_PIPE, RECORD_BLOCK_BYTES, BufferedMsgSpecWriter
from tap_usersnap.tap import TapUsersnap

if t.TYPE_CHECKING:
    from fake_usersnap import FakeUsersnap

TAP = str(Path(sys.executable).with_name("tap-usersnap"))


class CountingBuffer(io.BytesIO):
    """A byte sink that counts flushes."""

    flushes = 0

    @override
    def flush(self) -> None:
        self.flushes += 1
        super().flush()


def write(*messages: RecordMessage | StateMessage) -> tuple[list[dict], int]:
    raw = CountingBuffer()
    stdout = io.TextIOWrapper(raw, encoding="utf-8")
    with contextlib.redirect_stdout(stdout):
        writer = BufferedMsgSpecWriter()
        for message in messages:
            writer.write_message(message)
        writer.flush()  # as at the end of a run
    lines, flushes = raw.getvalue().decode("utf-8").split("\n"), raw.flushes
    stdout.detach()  # (it flushes once more) leave the buffer open for getvalue
    return [json.loads(line) for line in lines if line], flushes


def record(text: str) -> RecordMessage:
    return RecordMessage(
        stream="feedback",
        record={"feedback_id": "f-1", "comment": text},
        time_extracted=dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
    )


def test_records_are_buffered_and_state_is_flushed() -> None:
    state: dict = {"bookmarks": {"feedback": {"partitions": []}}}
    messages, flushes = write(record("a"), record("b"), StateMessage(value=state))
    assert [m["type"] for m in messages] == ["RECORD", "RECORD", "STATE"]
    assert messages[0]["record"] == {"feedback_id": "f-1", "comment": "a"}
    assert messages[0]["time_extracted"].startswith("2024-01-01T00:00:00")
    assert messages[2] == {"type": "STATE", "value": state}
    assert flushes == 1  # once, for the STATE: not once per record


def test_records_are_written_in_blocks_and_always_before_the_next_state() -> None:
    raw = CountingBuffer()
    stdout = io.TextIOWrapper(raw, encoding="utf-8")
    long = "x" * 1000
    with contextlib.redirect_stdout(stdout):
        writer = BufferedMsgSpecWriter()
        writer.write_message(record(long))
        assert raw.getvalue() == b"", "one record is held"
        for _ in range(RECORD_BLOCK_BYTES // 1000):
            writer.write_message(record(long))
        stdout.buffer.flush()
        written = raw.getvalue().count(b"\n")
        assert 0 < written < RECORD_BLOCK_BYTES // 1000 + 1, "a full block is written"
        writer.write_message(record("last"))
        writer.write_message(StateMessage(value={"n": 1}))
    lines = raw.getvalue().decode().splitlines()
    stdout.detach()
    assert len(lines) == RECORD_BLOCK_BYTES // 1000 + 3
    assert json.loads(lines[-2])["record"]["comment"] == "last"
    assert json.loads(lines[-1]) == {"type": "STATE", "value": {"n": 1}}


def test_records_held_are_written_when_the_sync_fails(
    fake: FakeUsersnap, monkeypatch: pytest.MonkeyPatch
) -> None:
    tap = TapUsersnap(config=fake.config())

    def fails_after_a_record(self: Tap) -> None:
        self.write_message(record("read before the failure"))
        raise UsersnapError("the API went away")

    monkeypatch.setattr(Tap, "sync_all", fails_after_a_record)
    raw = io.BytesIO()
    stdout = io.TextIOWrapper(raw, encoding="utf-8")
    with contextlib.redirect_stdout(stdout), pytest.raises(UsersnapError):
        tap.sync_all()
    stdout.flush()
    lines = raw.getvalue().decode().splitlines()
    assert [json.loads(line)["record"]["comment"] for line in lines] == ["read before the failure"]


def test_records_held_when_the_process_ends_without_a_sync_are_written_at_exit() -> None:
    script = (
        "from singer_sdk.singerlib import RecordMessage\n"
        "from tap_usersnap.records.writer import BufferedMsgSpecWriter\n"
        "writer = BufferedMsgSpecWriter()\n"
        "writer.write_message(RecordMessage(stream='feedback', record={'feedback_id': 'f-9'}))\n"
        "raise SystemExit(1)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, check=False)
    assert done.returncode == 1
    assert json.loads(done.stdout)["record"] == {"feedback_id": "f-9"}


def test_a_lone_surrogate_is_written_as_its_escape() -> None:
    broken = "half an emoji \ud83d"
    messages, _ = write(record(broken))
    assert messages[0]["record"]["comment"] == broken


def test_line_separators_stay_inside_their_line() -> None:
    text = "one\u2028two\u2029three\nfour"
    messages, _ = write(record(text), record("next"))
    assert [m["record"]["comment"] for m in messages] == [text, "next"]


class ClosedPipe(io.BytesIO):
    """stdout whose reader has gone."""

    @override
    def write(self, data: t.Any) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_a_broken_pipe_is_a_one_line_failure() -> None:
    stdout = io.TextIOWrapper(ClosedPipe(), encoding="utf-8")
    with contextlib.redirect_stdout(stdout), pytest.raises(OutputClosedError) as failure:
        BufferedMsgSpecWriter().write_message(StateMessage(value={}))
    assert str(failure.value) == BROKEN_PIPE
    assert failure.value.__cause__ is None
    assert isinstance(failure.value, UsersnapError)  # explained: no traceback, exit 1


@pytest.mark.parametrize("concurrency", [1, 4])
def test_a_target_that_stops_reading_ends_the_run_in_one_line(
    empty_fake: FakeUsersnap, tmp_path: Path, concurrency: int
) -> None:
    fake = empty_fake
    fake.seed(projects=3, per_project=60)
    fake.latency_seconds = 0.002  # slow enough for worker threads to read ahead
    config = fake.config(page_size=5, concurrency=concurrency, capture_edits=False)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    with subprocess.Popen(
        [TAP, "--config", str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as tap:
        assert tap.stdout is not None
        assert tap.stderr is not None
        received = tap.stdout.read(20_000)  # then the target goes, as `| head -c 20000` would
        tap.stdout.close()
        stderr = tap.stderr.read().decode()
        returncode = tap.wait(timeout=60)

    assert returncode == 1
    assert "Traceback" not in stderr
    assert "Exception ignored" not in stderr
    errors = [line.split(" | ")[-1] for line in stderr.splitlines() if "| ERROR" in line]
    assert errors == [BROKEN_PIPE]
    assert not secrets_in(stderr, fake)
    first = parse_messages(received[: received.rindex(b"\n")].decode())
    states = [m["value"] for m in first if m["type"] == "STATE"]
    assert states, "the target received a STATE to resume from"
    resumed = run_sync(config, states[-1])
    delivered = {
        m["record"]["feedback_id"]
        for m in first
        if m["type"] == "RECORD" and m["stream"] == "feedback"
    }
    assert delivered | set(resumed.ids()) == fake.all_feedback_ids()
