"""A faster Singer writer: the SDK's msgspec encoder, records written in large blocks."""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import sys
import weakref

from singer_sdk.contrib.msgspec import MsgSpecWriter, enc_hook, serialize_jsonl
from singer_sdk.singerlib import RecordMessage, StateMessage
from singer_sdk.singerlib.encoding.simple import Message
from typing_extensions import override

from tap_usersnap.http.errors import OutputClosedError
from tap_usersnap.sdk_private import state_message_dict

#: Bytes of RECORD lines held before they are written: stdout's own buffer (8 KB) holds
#: about two feedback records, so it would still cost a system call every other record.
RECORD_BLOCK_BYTES = 256 * 1024


class BufferedMsgSpecWriter(MsgSpecWriter):
    """Writes RECORDs in blocks and flushes on every other message.

    The SDK's writers flush after each message: one system call per record. Flushing on
    SCHEMA and STATE keeps what matters: a target never waits for a STATE, and a STATE is
    never seen before the records it covers (a killed run resumes from the last one out).
    Records still held when a sync fails before its last STATE are written by
    :meth:`flush`: the tap calls it however the sync ends, and at exit every writer's is
    called once more (the SDK's ``--test`` runs streams without the tap's sync), as stdout's
    own buffer is flushed then.
    """

    def __init__(self) -> None:
        super().__init__()
        #: The lines not yet written (the encoder reuses its buffer: they are copied here).
        self._held = bytearray()
        _WRITERS.add(self)

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
        """Hold records; write them before any other message, which is flushed.

        Raises:
            OutputClosedError: stdout is a pipe whose reader has gone.
        """
        self._held += self.format_message(message)
        if not isinstance(message, RecordMessage):
            self._write(flush=True)
        elif len(self._held) >= RECORD_BLOCK_BYTES:
            self._write(flush=False)

    def flush(self) -> None:
        """Write and flush the records held (at the end of a run that wrote no last STATE)."""
        if self._held:
            with contextlib.suppress(OutputClosedError):  # said once already, if at all
                self._write(flush=True)

    def _write(self, *, flush: bool) -> None:
        held, self._held = self._held, bytearray()
        out = sys.stdout.buffer
        try:
            out.write(held)
            if flush:
                out.flush()
        except BrokenPipeError:
            _discard_stdout()
            raise OutputClosedError(BROKEN_PIPE) from None


_WRITERS: weakref.WeakSet[BufferedMsgSpecWriter] = weakref.WeakSet()


@atexit.register
def _flush_writers() -> None:
    for writer in list(_WRITERS):
        writer.flush()


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
