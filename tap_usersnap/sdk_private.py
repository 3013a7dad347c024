"""Every use of a private singer-sdk member, in one place, each with why no public hook serves.

singer-sdk is pinned to 0.54.x; ``tests/test_sdk_private.py`` checks that each member used
here still exists as relied on, and names the SDK version if not. Four members:

- ``Stream._generate_record_messages``: the RECORDs of a record. The SDK's walks every
  nested object of every record for deselected properties, even when none is (a fifth of
  the CPU a record costs), and takes the version only from its own FULL_TABLE setup, which
  writes ACTIVATE_VERSION *before* the records (a failed run would leave a hard-deleting
  table empty); the tap's incremental records must carry the active version too, or a
  later ACTIVATE_VERSION would retire them.
- ``Stream._increment_stream_state``: the SDK keeps one bookmark per stream (or per
  partition read one after another); the feedback stream reads projects at once and moves
  each project's bookmark itself, only for items it may bookmark.
- ``PluginBase._validate_config``: the SDK's check quotes a bad value, a secret too, and
  cannot read numbers from the environment.
- ``Tap._handle_termination``: the SDK writes STATE from the signal handler, in the middle
  of whatever line was being written, and exits 0; the tap stops between records instead.
"""

from __future__ import annotations

import datetime as dt
import functools
import typing as t

from singer_sdk import Stream, Tap
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.singerlib import RecordMessage
from typing_extensions import override

if t.TYPE_CHECKING:
    from types import FrameType


class OwnRecordMessages(Stream):
    """A stream whose RECORDs carry :attr:`record_version`, built without a needless walk."""

    #: The table version every RECORD from now on carries (None: none).
    record_version: int | None = None

    @functools.cached_property
    def keeps_records_whole(self) -> bool:
        """Every property selected and no conformance: the SDK would change no record."""
        level = self.TYPE_CONFORMANCE_LEVEL
        return level is TypeConformanceLevel.NONE and all(self.mask.values())

    @override
    def _generate_record_messages(
        self, record: dict[str, t.Any]
    ) -> t.Generator[RecordMessage, None, None]:
        """The SDK's messages, but only where its walk or its conformance has work to do."""
        if not self.keeps_records_whole:
            for message in super()._generate_record_messages(record):
                message.version = self.record_version
                yield message
            return
        for stream_map in self.stream_maps:
            mapped = stream_map.transform(record)
            if mapped is not None:
                yield RecordMessage(
                    stream=stream_map.stream_alias,
                    record=mapped,
                    version=self.record_version,
                    time_extracted=dt.datetime.now(dt.timezone.utc),
                )


class OwnBookmarks(Stream):
    """A stream whose bookmarks its own code moves (the SDK's per-record step is off)."""

    @override
    def _increment_stream_state(
        self, latest_record: dict[str, t.Any], *, context: t.Mapping[str, t.Any] | None = None
    ) -> None:
        return


class TapHooks(Tap):
    """The two hooks the SDK's Tap lacks.

    Config checks that never quote a secret, and a termination signal that stops the run
    between records.
    """

    def config_errors(self, config: dict[str, t.Any]) -> list[str]:
        """Every problem with ``config``, none quoting a secret."""
        return []

    def on_termination(self, signum: int) -> None:
        """A termination signal arrived (the handler must not write output)."""

    @override
    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        errors = self.config_errors(self._config)
        if errors and raise_errors:
            raise ConfigValidationError(
                "Config validation failed", errors=errors, schema=self.config_jsonschema
            )
        return errors

    @override
    def _handle_termination(self, signum: int, frame: FrameType | None) -> None:
        self.on_termination(signum)
