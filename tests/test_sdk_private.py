"""The private singer-sdk members the tap relies on still exist, as relied on.

``tap_usersnap/sdk_private.py`` keeps every use of a private SDK member in one place. When
singer-sdk changes one of them, a test here fails naming the installed SDK version and
what in ``sdk_private.py`` (or elsewhere) must be revisited, instead of the tap silently
losing a guarantee (bookmarks per page, exit codes, secret-free config errors ...).
"""

from __future__ import annotations

import importlib.metadata
import inspect
import logging
import re
import secrets
import signal
import typing as t
from pathlib import Path

import pytest
from singer_sdk import Stream, Tap, plugin_base
from singer_sdk.plugin_base import PluginBase
from singer_sdk.singerlib import StateMessage
from singer_sdk.streams.rest import _HTTPStream
from typing_extensions import override

from tap_usersnap import sdk_private
from tap_usersnap.http.errors import UsersnapError
from tap_usersnap.sdk_private import (
    SDK_UNHANDLED_ERROR_LINE,
    ExplainedFailureFilter,
    ProjectBookmarks,
    TapHooks,
)
from tap_usersnap.tap import TapUsersnap

SDK_VERSION = importlib.metadata.version("singer-sdk")
P = inspect.Parameter
POSITIONAL = P.POSITIONAL_OR_KEYWORD
KEYWORD = P.KEYWORD_ONLY

#: ``(name, kind, default)`` of each parameter; ``P.empty``: no default.
Shape = list[tuple[str, t.Any, t.Any]]


def revisit(member: str, user: str, found: str) -> str:
    return (
        f"singer-sdk {SDK_VERSION} changed {member} (found: {found}); "
        f"revisit {user} in tap_usersnap/sdk_private.py"
    )


def shape(function: t.Callable[..., t.Any]) -> Shape:
    return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]


def source(function: t.Callable[..., t.Any]) -> str:
    return inspect.getsource(function)


@pytest.fixture
def tap() -> t.Iterator[TapUsersnap]:
    """A tap that never syncs (no server needed); the signal handlers it installs undone."""
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    config = {
        "jwt_id": secrets.token_hex(8),
        "jwt_secret": secrets.token_urlsafe(32),
        "api_url": "http://127.0.0.1:9/v0.1",
    }
    try:
        yield TapUsersnap(config=config)
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)


@pytest.mark.parametrize(
    ("owner", "name", "expected", "user"),
    [
        (
            Stream,
            "_generate_record_messages",
            [("self", POSITIONAL, P.empty), ("record", POSITIONAL, P.empty)],
            "FastRecordPath._generate_record_messages",
        ),
        (
            Stream,
            "_increment_stream_state",
            [
                ("self", POSITIONAL, P.empty),
                ("latest_record", POSITIONAL, P.empty),
                ("context", KEYWORD, None),
            ],
            "ProjectBookmarks._increment_stream_state",
        ),
        (
            PluginBase,
            "_validate_config",
            [("self", POSITIONAL, P.empty), ("raise_errors", KEYWORD, True)],
            "TapHooks._validate_config",
        ),
        (
            PluginBase,
            "_handle_termination",
            [
                ("self", POSITIONAL, P.empty),
                ("signum", POSITIONAL, P.empty),
                ("frame", POSITIONAL, P.empty),
            ],
            "TapHooks._handle_termination",
        ),
        (
            Tap,
            "_handle_termination",
            [
                ("self", POSITIONAL, P.empty),
                ("signum", POSITIONAL, P.empty),
                ("frame", POSITIONAL, P.empty),
            ],
            "TapHooks._handle_termination",
        ),
        (Tap, "sync_all", [("self", POSITIONAL, P.empty)], "TapHooks.sync_all"),
        (
            Stream,
            "_write_activate_version_message",
            [("self", POSITIONAL, P.empty), ("full_table_version", POSITIONAL, P.empty)],
            "FastRecordPath.write_activate_version",
        ),
        (
            _HTTPStream,
            "_write_request_duration_log",
            [
                ("self", POSITIONAL, P.empty),
                ("endpoint", POSITIONAL, P.empty),
                ("response", POSITIONAL, P.empty),
                ("context", POSITIONAL, P.empty),
                ("extra_tags", POSITIONAL, P.empty),
            ],
            "log_request_metric",
        ),
    ],
    ids=lambda value: value if isinstance(value, str) and not value[0].isupper() else None,
)
def test_private_method_keeps_its_signature(
    owner: type, name: str, expected: Shape, user: str
) -> None:
    member = f"{owner.__name__}.{name}"
    assert name in vars(owner), revisit(member, user, f"no {name} defined on {owner.__name__}")
    found = shape(getattr(owner, name))
    assert found == expected, revisit(member, user, str(inspect.signature(getattr(owner, name))))


def test_the_overrides_match_the_sdk_signatures() -> None:
    """The tap's overrides take what the SDK passes (same names, kinds and defaults)."""
    pairs: list[tuple[t.Callable[..., t.Any], t.Callable[..., t.Any]]] = [
        (sdk_private.FastRecordPath._generate_record_messages, Stream._generate_record_messages),
        (ProjectBookmarks._increment_stream_state, Stream._increment_stream_state),
        (TapHooks._validate_config, PluginBase._validate_config),
        (TapHooks._handle_termination, Tap._handle_termination),
    ]
    for ours, theirs in pairs:
        assert shape(ours) == shape(theirs), revisit(
            theirs.__qualname__, ours.__qualname__, str(inspect.signature(theirs))
        )


def test_the_sdk_still_calls_the_overridden_members() -> None:
    """An override the SDK no longer calls would be dead code and lose its guarantee."""
    calls: list[tuple[t.Callable[..., t.Any], str, str]] = [
        (Stream._sync_records, "self._increment_stream_state(", "ProjectBookmarks"),
        (Stream._write_record_message, "self._generate_record_messages(", "FastRecordPath"),
        (PluginBase.__init__, "self._validate_config(", "TapHooks._validate_config"),
    ]
    for caller, call, user in calls:
        assert call in source(caller), revisit(
            caller.__qualname__, user, f"it no longer contains {call}...)"
        )


def test_sync_all_is_still_final_without_an_after_sync_hook() -> None:
    assert getattr(Tap.sync_all, "__final__", False), revisit(
        "Tap.sync_all", "TapHooks.sync_all (its type: ignore[misc])", "no longer final"
    )
    hooks = [n for n in dir(Tap) if re.search(r"(after|post|finish|end)_?sync|sync_?(end|done)", n)]
    assert hooks == [], revisit(
        "Tap", "TapHooks.sync_all/after_sync: use the SDK's own hook", f"new members {hooks}"
    )


def test_the_termination_handler_is_what_the_signals_call(tap: TapUsersnap) -> None:
    for signum in (signal.SIGINT, signal.SIGTERM):
        handler = signal.getsignal(signum)
        assert getattr(handler, "__func__", None) is TapHooks._handle_termination, revisit(
            "PluginBase._setup_signal_handlers",
            "TapHooks._handle_termination",
            f"{signum!r} is handled by {handler!r}",
        )


def test_stream_version_is_still_the_records_version(tap: TapUsersnap) -> None:
    stream = t.cast("sdk_private.FastRecordPath", tap.streams["feedback"])
    assert "_stream_version" in vars(stream), revisit(
        "Stream._stream_version", "FastRecordPath.record_version", "no such instance attribute"
    )
    assert stream.record_version is None  # set when a sync with table versions starts
    assert "version=self._stream_version" in source(Stream._generate_record_messages), revisit(
        "Stream._generate_record_messages",
        "FastRecordPath.record_version",
        "RECORDs no longer carry _stream_version",
    )
    assert "self._stream_version =" in source(Stream.sync), revisit(
        "Stream.sync", "FastRecordPath.record_version", "it no longer sets _stream_version"
    )


def test_the_unhandled_error_line_is_still_the_sdks() -> None:
    core = Path(inspect.getfile(Stream))
    assert core.name == "core.py"
    assert SDK_UNHANDLED_ERROR_LINE in core.read_text(encoding="utf-8"), revisit(
        "the log line of a failed stream sync",
        "SDK_UNHANDLED_ERROR_LINE (ExplainedFailureFilter)",
        f"{SDK_UNHANDLED_ERROR_LINE!r} not in {core}",
    )
    assert SDK_UNHANDLED_ERROR_LINE in source(Stream.sync)


class Kept(logging.Handler):
    """The records a logger passed on to its handlers."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    @override
    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_the_stream_loggers_take_the_failure_filter(tap: TapUsersnap) -> None:
    """``explain_failures`` (tap.py) filters each ``Stream.logger``: a Logger up to SDK 0.54,
    a LoggerAdapter over one from 0.55 (an adapter has no filters of its own)."""
    for stream in tap.discover_streams():  # a second time: still one filter
        logger = stream.logger
        assert isinstance(logger, logging.Logger | logging.LoggerAdapter), revisit(
            "Stream.logger", "ExplainedFailureFilter (tap.py's explain_failures)", repr(logger)
        )
        underlying = logger.logger if isinstance(logger, logging.LoggerAdapter) else logger
        assert isinstance(underlying, logging.Logger), revisit(
            "Stream.logger", "ExplainedFailureFilter (tap.py's explain_failures)", repr(logger)
        )
        filters = [f for f in underlying.filters if isinstance(f, ExplainedFailureFilter)]
        assert len(filters) == 1, stream.name

        kept = Kept()
        underlying.addHandler(kept)
        try:
            for error in (UsersnapError("explained by the tap"), ValueError("a bug")):
                try:
                    raise error
                except (UsersnapError, ValueError):
                    logger.exception(f"{SDK_UNHANDLED_ERROR_LINE} %r", stream.name)
        finally:
            underlying.removeHandler(kept)
        assert [r.exc_info[0] for r in kept.records if r.exc_info] == [ValueError], stream.name


def test_the_config_errors_read_the_plugins_own_config_dict(tap: TapUsersnap) -> None:
    """``TapHooks._validate_config`` (sdk_private.py) hands ``PluginBase._config``, the dict
    behind ``config``, to the checks, so numbers given as text are numbers for the whole run."""
    assert isinstance(vars(tap).get("_config"), dict), revisit(
        "PluginBase._config", "TapHooks._validate_config in tap_usersnap/sdk_private.py", "no dict"
    )
    tap._config["request_timeout"] = "30"
    assert tap._validate_config() == []
    assert tap.config["request_timeout"] == 30.0, revisit(
        "PluginBase.config", "TapHooks._validate_config in tap_usersnap/sdk_private.py", "a copy"
    )


def test_the_settings_validator_is_still_the_sdks() -> None:
    """``schema_errors`` checks with ``plugin_base.JSONSchemaValidator``, which the SDK does not
    export: it must still exist and still name a wrong value."""
    assert hasattr(plugin_base, "JSONSchemaValidator"), revisit(
        "plugin_base.JSONSchemaValidator", "schema_errors", "no such name"
    )
    schema = {"type": "object", "properties": {"page_size": {"type": "integer", "maximum": 100}}}
    errors = list(sdk_private.schema_errors(schema, {"page_size": 101}))
    assert [list(e.path) for e in errors] == [["page_size"]], revisit(
        "plugin_base.JSONSchemaValidator", "schema_errors", repr(errors)
    )


def test_a_state_message_is_still_the_sdks_wire_format() -> None:
    """The writer sends STATE without the SDK's deep copy, in the very format ``to_dict`` gives."""
    message = StateMessage(value={"bookmarks": {"feedback": {"partitions": []}}})
    assert sdk_private.state_message_dict(message) == message.to_dict(), revisit(
        "StateMessage.to_dict", "state_message_dict", repr(message.to_dict())
    )


def test_stream_maps_still_say_how_they_flatten(tap: TapUsersnap) -> None:
    """``flattened_columns`` reads three members of the SDK's stream maps."""
    for stream_map in tap.streams["feedback"].stream_maps:
        for member in ("flattening_options", "flattening_enabled", "transformed_schema"):
            assert hasattr(stream_map, member), revisit(
                f"StreamMap.{member}", "flattened_columns", f"{type(stream_map).__name__} lacks it"
            )
