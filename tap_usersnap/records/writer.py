"""A faster Singer writer: the SDK's msgspec encoder, without a flush per record."""

from __future__ import annotations

import contextlib
import json
import os
import sys

from singer_sdk.contrib.msgspec import MsgSpecWriter, enc_hook, serialize_jsonl
from singer_sdk.singerlib import RecordMessage, StateMessage
from singer_sdk.singerlib.encoding.simple import Message
from typing_extensions import override

from tap_usersnap.http.errors import OutputClosedError
from tap_usersnap.sdk_private import state_message_dict


class BufferedMsgSpecWriter(MsgSpecWriter):
    """Writes RECORDs through stdout's buffer and flushes on every other message.

    The SDK's writers flush after each message: one system call per record. Flushing on
    SCHEMA and STATE keeps what matters: a target never waits for a STATE, and a STATE is
    never seen before the records it covers (a killed run resumes from the last one out).
    """

    @override
    def serialize_message(self, message: Message) -> bytearray:
        r"""The JSON line by msgspec; by the standard library where msgspec cannot encode.

        A lone surrogate (half an emoji, as cut by a length limit) is one such value: it
        is written as its escape (``\ud83d``), exactly as the API sent it.
        """
        try:
            if isinstance(message, StateMessage):  # the SDK's to_dict deep-copies the state
                return serialize_jsonl(state_message_dict(message))
            return super().serialize_message(message)
        except UnicodeEncodeError:
            line = json.dumps(message.to_dict(), default=enc_hook, separators=(",", ":"))
            return bytearray((line + "\n").encode("ascii"))

    @override
    def write_message(self, message: Message) -> None:
        """Buffer records; flush the rest. A target that stops reading ends the run in one line.

        Raises:
            OutputClosedError: stdout is a pipe whose reader has gone.
        """
        out = sys.stdout.buffer
        try:
            out.write(self.format_message(message))
            if not isinstance(message, RecordMessage):
                out.flush()
        except BrokenPipeError:
            _discard_stdout()
            raise OutputClosedError(BROKEN_PIPE) from None


#: The one line a run ends with when its target stops reading.
BROKEN_PIPE = (
    "The target stopped reading the tap's output (broken pipe): it exited or closed its "
    "input, see its own log; the next run resumes from the last STATE it received"
)


def _discard_stdout() -> None:
    """Point stdout at /dev/null: what is still buffered must not fail again at exit."""
    with contextlib.suppress(OSError, ValueError):  # not a file descriptor (tests)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
