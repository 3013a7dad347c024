"""Every use of a private singer-sdk member, in one place, each with why no public hook serves.

singer-sdk is pinned to 0.54.x. ``tests/test_sdk_private.py`` checks that each member used
here still exists with the signature relied on, and fails naming the SDK version if not.
The rest of the tap calls only the hooks these mixins define.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import sys
import typing as t

from singer_sdk import Stream, Tap
from singer_sdk.exceptions import AbortedSyncExceptionBase, ConfigValidationError
from singer_sdk.helpers._catalog import pop_deselected_record_properties
from singer_sdk.plugin_base import JSONSchemaValidator
from singer_sdk.singerlib import RecordMessage
from singer_sdk.streams import RESTStream
from typing_extensions import override

from tap_usersnap.http.errors import UsersnapError

if t.TYPE_CHECKING:
    from types import FrameType

    import jsonschema
    import requests
    from singer_sdk.helpers.types import Context
    from singer_sdk.mapper import StreamMap
    from singer_sdk.singerlib import StateMessage

#: The SDK's log line for a failed stream sync; the tap's own one line replaces it.
SDK_UNHANDLED_ERROR_LINE = "An unhandled error occurred while syncing"


class FastRecordPath(Stream):
    """The record path: RECORD messages for each stream map, flattened ones kept to their schema.

    ``_generate_record_messages`` runs once per record and has no public counterpart: the
    walk that removes deselected properties (``pop_deselected_record_properties``, in a
    private SDK module) cost a fifth of the tap's time when every property is selected, the
    usual case; and flattened records must keep to the flattened schema (see
    :func:`keep_to_columns`), which the SDK's path does not ensure.
    """

    @override
    def _generate_record_messages(
        self, record: dict[str, t.Any]
    ) -> t.Generator[RecordMessage, None, None]:
        # The SDK's type conformance step is left out: at TypeConformanceLevel.NONE it
        # returns the record as is. Flattened records keep to their flattened schema.
        if not self.selects_every_property:
            pop_deselected_record_properties(record, self.schema, self.mask)
        extracted_at = dt.datetime.now(dt.timezone.utc)
        for stream_map, flattened in self._record_maps:
            mapped = stream_map.transform(record)
            if mapped is None:
                continue
            if flattened is not None:
                mapped = keep_to_columns(mapped, *flattened)
            yield RecordMessage(
                stream=stream_map.stream_alias,
                record=mapped,
                version=self._stream_version,
                time_extracted=extracted_at,
            )

    @functools.cached_property
    def _record_maps(self) -> list[tuple[StreamMap, tuple[t.Collection[str], str] | None]]:
        """Each stream map with its flattened columns, resolved once (records are many)."""
        return [(stream_map, flattened_columns(stream_map)) for stream_map in self.stream_maps]

    @functools.cached_property
    def selects_every_property(self) -> bool:
        """True when the catalog deselects nothing (a missing entry inherits its parent's)."""
        return all(self.mask.values())

    @property
    def record_version(self) -> int | None:
        """The table version RECORDs carry (``_stream_version`` has no public accessor)."""
        return self._stream_version

    def use_table_version(self, version: int) -> None:
        """Make every RECORD from now on carry ``version`` (the SDK's path reads it too).

        The SDK sets ``_stream_version`` only for FULL_TABLE streams, and writes
        ACTIVATE_VERSION before the records, so a failed run would leave the table empty
        with ``hard_delete``; the tap writes it after them instead.
        """
        self._stream_version = version

    def write_activate_version(self, version: int) -> None:
        """ACTIVATE_VERSION for every stream map that keeps this stream, as the SDK writes it.

        The SDK writes it only before the records (``emit_activate_version_messages``);
        the tap writes it after a complete read, through the SDK's own writer.
        """
        self._write_activate_version_message(version)


class ProjectBookmarks(Stream):
    """No stream-level bookmark: the feedback engine keeps one bookmark per project itself.

    ``_increment_stream_state`` is the only way to stop the SDK from keeping one
    stream-level bookmark for a stream read in one pass; the engine advances each project's
    bookmark after each page's records are out.
    """

    @override
    def _increment_stream_state(
        self,
        latest_record: dict[str, t.Any],
        *,
        context: t.Mapping[str, t.Any] | None = None,
    ) -> None:
        return


class ExplainedFailureFilter(logging.Filter):
    """Drops the SDK's generic "unhandled error" line where it is no error of the sync's.

    That is a failure the tap explains itself in one line, or the SDK's own deliberate stop
    after one record of each stream in ``--test``. The SDK logs the line while the exception
    is being handled, so ``sys.exc_info`` tells which.
    """

    @override
    def filter(self, record: logging.LogRecord) -> bool:
        explained = isinstance(sys.exc_info()[1], UsersnapError | AbortedSyncExceptionBase)
        return not (explained and str(record.msg).startswith(SDK_UNHANDLED_ERROR_LINE))


class TapHooks(Tap):
    """Hooks the SDK's Tap lacks: extra config checks, an after-sync step, exit codes.

    - ``_validate_config``: the SDK's checks print a bad value (a secret too) and cannot
      read numbers from the environment; :meth:`config_errors` replaces them.
    - ``sync_all`` is final, yet the run must fail at the end, after every other project
      was delivered, when a project had to be skipped: :meth:`after_sync`; and records
      held for a block write must go out even when the sync fails: :meth:`end_output`.
    - ``_handle_termination`` exits 0 on SIGTERM/SIGINT, so an orchestrator would record an
      interrupted run as a success.
    """

    def config_errors(self, config: dict[str, t.Any]) -> list[str]:
        """Every problem with ``config`` (the settings as given), none quoting a secret."""
        return []

    def after_sync(self) -> None:
        """Runs once every stream is synced."""

    @override
    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        errors = self.config_errors(self._config)  # the SDK's own check reads it so too
        if errors and raise_errors:
            raise ConfigValidationError(
                "Config validation failed", errors=errors, schema=self.config_jsonschema
            )
        return errors

    def end_output(self) -> None:
        """Runs when the sync ends, failed or not: whatever output is held goes out."""

    @override  # type: ignore[misc]  # final in the SDK; see the class doc
    def sync_all(self) -> None:
        try:
            super().sync_all()
            self.after_sync()
        finally:
            self.end_output()

    @override
    def _handle_termination(self, signum: int, frame: FrameType | None) -> None:
        """Write the state reached (every record before it is out), then exit 128 + signal."""
        try:
            self.state_writer.write_state(self.state)
        finally:
            self.logger.error(
                "Interrupted by signal %d: stopped; the next run resumes from the last STATE",
                signum,
            )
            sys.stdout.flush()
            sys.exit(128 + signum)


def schema_errors(schema: dict[str, t.Any], value: t.Any) -> t.Iterator[jsonschema.ValidationError]:
    """The problems of ``value`` against ``schema``, by the validator the SDK checks config with.

    ``JSONSchemaValidator`` (its draft and format checks) lives in ``plugin_base`` without
    being exported; the tap checks settings itself so that no secret is ever quoted.
    """
    return t.cast(
        "t.Iterator[jsonschema.ValidationError]", JSONSchemaValidator(schema).iter_errors(value)
    )


def state_message_dict(message: StateMessage) -> dict[str, t.Any]:
    """A STATE message as ``StateMessage.to_dict`` gives it, without deep-copying the state.

    ``to_dict`` copies the whole state, on every page; the wire format is the SDK's, which
    ``tests/test_sdk_private.py`` holds this to.
    """
    return {"type": "STATE", "value": message.value}


def flattened_columns(stream_map: StreamMap) -> tuple[t.Collection[str], str] | None:
    """The stream map's flattened columns and separator; None if it does not flatten.

    With ``flattening_enabled`` the SDK (0.54) flattens each object property that declares
    ``properties`` into a column per property (``screenshot__annotated_image_url``) and
    drops the object's own key from the schema, but flattens a record's value only when it
    is an object, and passes undeclared keys through: targets that write a column per
    schema property then stop, others drop the key without a word.
    """
    options = stream_map.flattening_options
    if options is None or not stream_map.flattening_enabled:
        return None
    return frozenset(stream_map.transformed_schema["properties"]), options.separator


def keep_to_columns(
    record: dict[str, t.Any], columns: t.Collection[str], separator: str
) -> dict[str, t.Any]:
    """``record`` without keys that are not ``columns``; a null object nulls its columns.

    A key outside ``columns`` whose value is null is an object the schema flattened (or
    a value nobody declared): each column under it (``key`` + ``separator`` + ...) that
    the record lacks is set to null, in the key's place. The record is returned as it is
    when every key is a column, the usual case.
    """
    if all(key in columns for key in record):
        return record
    kept: dict[str, t.Any] = {}
    for key, value in record.items():
        if key in columns:
            kept[key] = value
        elif value is None:
            prefix = key + separator
            for column in columns:
                if column.startswith(prefix) and column not in record:
                    kept[column] = None
    return kept


def log_request_metric(
    stream: RESTStream[t.Any], response: requests.Response, context: Context | None
) -> None:
    """The SDK's ``http_request_duration`` metric line for one answer, as its loop logs it.

    The tap sends requests through its own client (retries, pages as pages), so the SDK's
    request loop, which logs the metric in ``_request``, never runs.
    """
    stream._write_request_duration_log(
        endpoint=stream.path, response=response, context=context, extra_tags=None
    )
