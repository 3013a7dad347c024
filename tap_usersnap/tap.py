"""tap-usersnap: the Tap class and its command line."""

from __future__ import annotations

import functools
import io
import json
import os
import sys
import time
import typing as t

import jsonschema
from singer_sdk.exceptions import ConfigValidationError, MapExpressionError, StreamMapConfigError
from singer_sdk.helpers.capabilities import PluginCapabilities
from singer_sdk.singerlib import Metadata, Schema, StreamMetadata
from typing_extensions import override

from tap_usersnap.base import RecordsInBlocksWriter, Run, UsersnapStream
from tap_usersnap.client import (
    Clock,
    InterruptedRunError,
    ProjectRefusedError,
    UsersnapError,
)
from tap_usersnap.deletes import scope_gaps
from tap_usersnap.feedback import FeedbackStream
from tap_usersnap.records import MAX_QUOTED, json_path, schema_of, shape_problem
from tap_usersnap.sdk_private import TapHooks
from tap_usersnap.settings import (
    SETTINGS,
    Settings,
    config_problems,
    environment_problems,
    stream_map_problems,
)
from tap_usersnap.state import check_state_file
from tap_usersnap.streams import ProjectAssigneesStream, ProjectsStream

if t.TYPE_CHECKING:
    import click
    from singer_sdk.helpers.capabilities import CapabilitiesEnum
    from singer_sdk.singerlib import Catalog

AUTOMATIC = Metadata.InclusionType.AUTOMATIC
#: The tap's streams, in the order they are synced.
STREAMS = ("projects", "feedback", "project_assignees")
#: The feedback fields the tap builds (from the project read, and derived), not the API.
FEEDBACK_BUILT = ["project_id", "project_name", "conversation", "label_names", "input_values"]
#: What a stream_maps setting the SDK cannot use raises.
MAP_ERRORS = (MapExpressionError, StreamMapConfigError)


class TapUsersnap(TapHooks):
    """Extracts Usersnap projects, feedback and assignees through the Usersnap REST API v0.1."""

    name = "tap-usersnap"
    message_writer_class = RecordsInBlocksWriter
    config_jsonschema = SETTINGS
    #: The SDK's, less BATCH: a BATCH message is written after the STATE that covers it,
    #: so a crash between the two would lose its records.
    capabilities: t.ClassVar[list[CapabilitiesEnum]] = [
        c for c in TapHooks.capabilities if c is not PluginCapabilities.BATCH
    ]

    def __init__(self, *args: t.Any, clock: Clock | None = None, **kwargs: t.Any) -> None:
        self.clock: Clock = clock or time
        if kwargs.get("parse_env_config"):  # the SDK would misread these, or fail on them
            problems = environment_problems(
                SETTINGS["properties"], f"{self.name.upper().replace('-', '_')}_", os.environ
            )
            if problems:
                raise ConfigValidationError(
                    "Config validation failed", errors=problems, schema=SETTINGS
                )
        super().__init__(*args, **kwargs)

    @functools.cached_property
    def run(self) -> Run:
        """What this run's streams share (made once the settings are checked)."""
        return Run.of(Settings.of(self.config), self.clock, self.logger)

    @override
    def discover_streams(self) -> list[UsersnapStream]:
        """Projects first (the others reuse its listing), then feedback and assignees."""
        projects = ProjectsStream(self, self.run)
        self.run.list_projects = projects.list_all
        self.run.after_sync = self.after_sync
        return [projects, FeedbackStream(self, self.run), ProjectAssigneesStream(self, self.run)]

    @property
    @override
    def input_catalog(self) -> Catalog | None:
        """The catalog given, each stream's keys named, typed as the tap's and always selected.

        A hand-written catalog may leave out the keys, retype or deselect one; records
        without their key cannot be loaded, nor bookmarked without ``created_at``. The
        fields the tap builds keep its types too (it makes them after conforming). An entry
        without stream-level metadata is selected, as one without any metadata is. The SDK
        builds the SCHEMA messages from this catalog, so the entry itself is corrected
        (idempotent); the records are conformed to its schema (other types it names too).
        """
        catalog = super().input_catalog
        for name, keys, replication_key, built in (
            ("projects", ["project_id"], None, []),
            ("feedback", ["feedback_id"], "created_at", FEEDBACK_BUILT),
            ("project_assignees", ["project_id", "user_id"], None, []),
        ):
            entry = catalog.get_stream(name) if catalog is not None else None
            if entry is None:
                continue
            entry.stream, entry.key_properties, entry.replication_key = name, keys, replication_key
            if () not in entry.metadata:
                entry.metadata[()] = StreamMetadata(selected=True)
            own = schema_of(name)["properties"]
            entry.schema.properties = entry.schema.properties or {}
            for field in built:  # the tap's own values, of its own types
                if field in entry.schema.properties:
                    entry.schema.properties[field] = Schema.from_dict(own[field])
            for key in [*keys, *([replication_key] if replication_key else [])]:
                entry.schema.properties[key] = Schema.from_dict(own[key])
                metadata = entry.metadata.get(("properties", key))
                if metadata is None:
                    entry.metadata[("properties", key)] = Metadata(inclusion=AUTOMATIC)
                else:
                    metadata.inclusion = AUTOMATIC
        return catalog

    @override
    def config_errors(self, config: dict[str, t.Any]) -> list[str]:
        """The settings' problems, the SDK's built-in ones too, none quoting a secret."""
        self.append_builtin_config(self.config_jsonschema)
        problems = config_problems(config, self.config_jsonschema)
        if stream_maps := config.get("stream_maps"):  # the schema files read only then
            streams = {name: set(schema_of(name)["properties"]) for name in STREAMS}
            problems += stream_map_problems(stream_maps, streams)
        return problems

    @override
    def on_termination(self, signum: int) -> None:
        """Stop at the next record: nothing is written from inside the handler."""
        self.run.stop_signal = signum

    def after_sync(self) -> None:
        """Deletions of projects and assignees, the summary, and a failure owed to the run.

        ACTIVATE_VERSION for the full-table streams only when no project may be missing: a
        refused project's rows were not re-sent, so activating would retire them.
        """
        t.cast("RecordsInBlocksWriter", self.message_writer).write_block()  # the last stream's
        run, report = self.run, self.run.report
        projects = t.cast("ProjectsStream", self.streams["projects"])
        assignees = t.cast("ProjectAssigneesStream", self.streams["project_assignees"])
        feedback = t.cast("FeedbackStream", self.streams["feedback"])
        if run.settings.capture_deletes and (projects.selected or assignees.selected):
            listing = run.listing
            held = scope_gaps(
                projects.known_project_ids,
                listed=listing.ids(),
                complete=listing.complete,
                wanted=run.settings.project_ids,
                exists=feedback.project_exists,
            ).held_for_listing()
            held += [f"project {p} was refused" for p in report.refused_projects]
            if held:
                what = " and ".join(s.name for s in (projects, assignees) if s.selected)
                report.deletes_held(what, "; ".join(held))
            else:
                projects.activate()
                if assignees.selected and assignees.unread:
                    report.deletes_held(assignees.name, "; ".join(dict.fromkeys(assignees.unread)))
                else:
                    assignees.activate()
            projects.remember_listed(retired=not held)
            projects.write_state()
        failure = report.finish()
        if failure:
            raise (ProjectRefusedError if report.refused_projects else UsersnapError)(failure)

    @classmethod
    @override
    def invoke(cls, *args: t.Any, **kwargs: t.Any) -> None:
        """Run the tap; a known failure ends it with one clear line (exit 1, or 128 + signal)."""
        try:
            for name in ("state", "catalog"):
                kwargs[name] = _checked_json_file(kwargs.get(name), name)
            super().invoke(*args, **kwargs)
        except (UsersnapError, *MAP_ERRORS) as exc:
            mapping = not isinstance(exc, UsersnapError)
            cause = "The stream_maps setting cannot be used: " if mapping else ""
            cls.logger.error("%s%s", cause, exc)  # noqa: TRY400 - one line, no traceback
            sys.exit(128 + exc.signum if isinstance(exc, InterruptedRunError) else 1)

    @classmethod
    @override
    def cb_test(cls, ctx: click.Context, param: click.Option, value: str) -> None:
        """``--test``: the SDK's connection check; a known failure is one line, exit 1."""
        try:
            super().cb_test(ctx, param, value)
        except ConfigValidationError as exc:  # the SDK names the settings only in a sync
            problems = [*exc.errors, "the config is not valid"]
        except (UsersnapError, *MAP_ERRORS) as exc:
            problems = [str(exc)]
        else:
            return
        for problem in problems:
            cls.logger.error("Connection test failed: %s", problem)
        ctx.exit(1)

    @classmethod
    @override
    def cb_config(cls, ctx: click.Context, param: click.Option, value: tuple[str, ...]) -> t.Any:
        """``--config``: each file must hold a JSON object; else one line naming it, exit 1."""
        for path in value:
            try:
                if path != "ENV":
                    with open(path, encoding="utf-8") as file:
                        _checked_json_file(file, "config")
            except UsersnapError as exc:
                problem = str(exc)
            except (OSError, UnicodeDecodeError) as exc:
                problem = f"The config file {path} cannot be read ({exc})"
            else:
                continue
            cls.logger.error("%s", problem)
            ctx.exit(1)
        return super().cb_config(ctx, param, value)


def _checked_json_file(file: t.IO[str] | None, what: str) -> t.IO[str] | None:
    """The file, if it holds a JSON object; else a failure naming the file."""
    if file is None:
        return None
    name = getattr(file, "name", what)
    text = file.read()
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except ValueError as exc:
        msg = f"The {what} file {name} is not valid JSON ({exc})"
        raise UsersnapError(msg) from None
    if not isinstance(value, dict):
        msg = f"The {what} file {name} holds a {type(value).__name__}, not a JSON object"
        raise UsersnapError(msg)
    if what == "state":
        check_state_file(value, name)
    if what == "catalog" and (problem := shape_problem(value, schema_of("singer_catalog"))):
        msg = f"The catalog file {name} is not a Singer catalog: {problem}"
        raise UsersnapError(msg)
    for number, entry in enumerate(value["streams"] if what == "catalog" else []):
        if problem := _schema_problem(entry["schema"]):
            stream = str(entry["tap_stream_id"])[:MAX_QUOTED]
            msg = f"The catalog file {name} holds no JSON schema for stream {stream!r}: {problem}"
            raise UsersnapError(f"{msg} (streams[{number}].schema)")
    return io.StringIO(text)


def _schema_problem(schema: dict[str, t.Any]) -> str | None:
    """Where a schema from outside (a catalog's) is no JSON schema: ``"type": 5``, say.

    Checked against the metaschema its ``$schema`` names (2020-12 if none), so a schema of
    an older draft passes as that draft allows.
    """
    declared = schema.get("$schema")
    known = {"$schema": declared} if isinstance(declared, str) else {}
    validator = jsonschema.validators.validator_for(known, default=jsonschema.Draft202012Validator)
    error = jsonschema.exceptions.best_match(validator(validator.META_SCHEMA).iter_errors(schema))
    if error is None:
        return _unreadable_part(schema, "")
    return f"{json_path(error.absolute_path) or 'the schema'}: {error.message[:200]}"


def _unreadable_part(schema: dict[str, t.Any], path: str) -> str | None:
    """Where a property's or the items' schema is no object, which the SDK cannot read.

    JSON Schema allows ``true`` and ``false`` there (and draft 7 a list of items).
    """
    parts = [(f"{path}.properties.{k}", v) for k, v in (schema.get("properties") or {}).items()]
    parts += [(f"{path}.items", schema["items"])] if "items" in schema else []
    for where, part in parts:
        if type(part) is not dict:
            quoted = json.dumps(part)[:MAX_QUOTED]
            return (
                f"{where.lstrip('.')}: {quoted} is no object (the SDK reads only an object there)"
            )
        if problem := _unreadable_part(part, where):
            return problem
    return None


def _no_constant(name: str) -> t.NoReturn:
    """JSON has no NaN nor Infinity; Python's reader would take them."""
    msg = f"{name} is not a JSON value"
    raise ValueError(msg)


if __name__ == "__main__":
    TapUsersnap.cli()
