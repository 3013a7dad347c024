"""The buffered msgspec writer: records buffered, STATE flushed, odd text still written."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json

from singer_sdk.singerlib import RecordMessage, StateMessage
from typing_extensions import override

from tap_usersnap.writer import BufferedMsgSpecWriter


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


def test_a_lone_surrogate_is_written_as_its_escape() -> None:
    broken = "half an emoji \ud83d"
    messages, _ = write(record(broken))
    assert messages[0]["record"]["comment"] == broken


def test_line_separators_stay_inside_their_line() -> None:
    text = "one\u2028two\u2029three\nfour"
    messages, _ = write(record(text), record("next"))
    assert [m["record"]["comment"] for m in messages] == [text, "next"]
