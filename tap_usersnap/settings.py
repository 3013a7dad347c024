"""The tap's settings: their schema, their checks, and one typed :class:`Settings`.

The checks never print a secret's value; :class:`Settings` is read once from the checked
config, and every layer is given it instead of the raw config.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
import math
import re
import typing as t
from urllib.parse import urlsplit

import jsonschema

from tap_usersnap.records import MAX_QUOTED, is_timestamp, parse_timestamp, schema_of

#: The settings' JSON schema (titles, descriptions, defaults, limits), from its file.
SETTINGS = schema_of("settings")
#: The words a boolean setting may be in the environment: the SDK reads the first four as
#: true and any other word as false, a typo too.
BOOLEAN_WORDS = ("true", "1", "yes", "on", "false", "0", "no", "off")
#: How far ahead a start_date may be (clocks and time zones differ) before it is refused.
START_DATE_TOLERANCE = dt.timedelta(days=1)
LOGGER = logging.getLogger("tap-usersnap")
#: ``backfill_window``: a number of days, weeks or months, 1 to 9999 (9999 months still ends
#: after the year 1, which a timestamp can hold).
BACKFILL_WINDOW_PATTERN: str = SETTINGS["properties"]["backfill_window"]["pattern"]
#: The tap's own settings, by name (the SDK adds its built-in ones to ``SETTINGS`` in place).
TAP_SETTINGS: tuple[str, ...] = tuple(SETTINGS["properties"])


@dataclasses.dataclass(frozen=True)
class Settings:
    """The settings, typed, read once from a config that :func:`config_problems` passed."""

    jwt_id: str
    jwt_secret: str = dataclasses.field(repr=False)
    #: The API root, without a trailing slash.
    api_url: str
    #: Each once, in order; empty: every project the key can see.
    project_ids: tuple[str, ...]
    start_date: str | None
    backfill_window: str | None
    page_size: int
    capture_edits: bool
    capture_deletes: bool
    max_delete_percent: int
    sweep_days: int
    concurrency: int
    request_timeout: float

    @classmethod
    def of(cls, config: t.Mapping[str, t.Any]) -> Settings:
        """The settings of a checked config (defaults filled in)."""

        def setting(name: str) -> t.Any:
            return config.get(name, SETTINGS["properties"][name].get("default"))

        return cls(
            jwt_id=str(config.get("jwt_id") or ""),  # --discover needs no credentials
            jwt_secret=str(config.get("jwt_secret") or ""),
            api_url=str(setting("api_url")).rstrip("/"),
            project_ids=tuple(dict.fromkeys(setting("project_ids") or [])),  # each read once
            start_date=setting("start_date") or None,
            backfill_window=setting("backfill_window") or None,
            page_size=int(setting("page_size")),
            capture_edits=bool(setting("capture_edits")),
            capture_deletes=bool(setting("capture_deletes")),
            max_delete_percent=int(setting("max_delete_percent")),
            sweep_days=int(setting("sweep_days")),
            concurrency=int(setting("concurrency")),
            request_timeout=float(setting("request_timeout")),
        )


def config_problems(config: dict[str, t.Any], schema: dict[str, t.Any]) -> list[str]:
    """Every problem with ``config``, each naming its setting; a secret's value is never quoted.

    Two slips are mended in place first: a number given as text (the environment's only
    type) is read as a number, and whitespace around a credential is removed.
    """
    properties = schema.get("properties", {})
    _read_numbers(config, properties)
    _strip_credentials(config)
    problems = []
    validator = jsonschema.validators.validator_for(schema)
    checker = jsonschema.FormatChecker()
    for error in validator(schema, format_checker=checker).iter_errors(config):
        name = str(error.path[0]) if error.path else None
        where = "".join(f"[{part!r}]" for part in error.path)
        if name == "backfill_window" and error.validator == "pattern":
            problems.append(
                f"backfill_window {str(error.instance)[:MAX_QUOTED]!r} is not a number of days, "
                "weeks or months, such as '30 days' or '6 months' (1 to 9999), in "
                "config['backfill_window']"
            )
        elif name is not None and properties.get(name, {}).get("secret"):
            problems.append(
                f"config{where} is invalid: it must satisfy '{error.validator}' "
                f"({error.validator_value!r}); the value is not shown, as it is secret"
            )
        else:
            problems.append(f"{error.message} in config{where}" if where else error.message)
    problems += _start_date_problems(config.get("start_date"))
    problems += _api_url_problems(config.get("api_url"))
    problems += [
        f"{name} is {value!r}, not a finite number, in config[{name!r}]"
        for name, value in config.items()
        if isinstance(value, float) and not math.isfinite(value)
    ]
    if config.get("start_date") is not None and config.get("backfill_window"):
        problems.append(
            "start_date and backfill_window are both set; set one of them (each says where "
            "the first run starts)"
        )
    if config.get("batch_config"):
        problems.append(
            "batch_config is set, but tap-usersnap does not write BATCH messages (its STATE "
            "could run ahead of records a target has not loaded); remove the batch_config setting"
        )
    return problems


def stream_map_problems(stream_maps: t.Any, streams: dict[str, set[str]]) -> list[str]:
    """A ``stream_maps`` entry naming no stream of the tap (the SDK ignores it silently).

    A typo in a map meant to hash or drop personal data would load that data in clear.
    ``streams``: each stream's properties; removing one it does not have is warned about.
    """
    problems = []
    for name, spec in stream_maps.items() if isinstance(stream_maps, dict) else ():
        source = spec.get("__source__") if isinstance(spec, dict) else None
        stream = name if source is None else source
        if name != "__else__" and stream not in streams:
            problems.append(
                f"stream_maps names stream {str(stream)[:MAX_QUOTED]!r}, which tap-usersnap "
                f"does not have (its streams: {', '.join(streams)}), in config['stream_maps']"
            )
        elif isinstance(spec, dict) and stream in streams:
            for field in [f for f, e in spec.items() if e is None and f not in streams[stream]]:
                LOGGER.warning(
                    "stream_maps removes %r from %s, which has no such property (a typo?)",
                    str(field)[:MAX_QUOTED],
                    stream,
                )
    return problems


def _start_date_problems(start_date: t.Any) -> list[str]:
    """A start_date that is no date-time, or so far ahead that no feedback can match yet."""
    if start_date is None:
        return []
    if not is_timestamp(start_date):
        return [
            f"start_date {start_date!r} is not an ISO 8601 date-time "
            "(e.g. 2024-01-31T00:00:00Z) in config['start_date']"
        ]
    if parse_timestamp(start_date) > dt.datetime.now(dt.timezone.utc) + START_DATE_TOLERANCE:
        return [
            f"start_date {start_date!r} is more than a day in the future, so no feedback "
            "could be read; in config['start_date']"
        ]
    return []


def _api_url_problems(api_url: t.Any) -> list[str]:
    """An api_url that no request could be sent to, or that carries a query or fragment."""
    if not isinstance(api_url, str):
        return []  # the schema check names it
    try:
        parts = urlsplit(api_url)
        parts.port  # noqa: B018 - raises for a port out of range
    except ValueError as exc:
        return [f"api_url {api_url[:80]!r} is not a valid URL ({exc}) in config['api_url']"]
    if parts.query or parts.fragment or "#" in api_url:
        return [
            f"api_url {api_url[:80]!r} holds a query or fragment; give the API's base URL "
            "alone (such as https://platform.usersnap.com/v0.1) in config['api_url']"
        ]
    return []


def environment_problems(
    properties: dict[str, t.Any], prefix: str, environ: t.Mapping[str, str]
) -> list[str]:
    """Integer and boolean settings in the environment that would be misread.

    The SDK reads them before any check: ``int("abc")`` fails with a traceback, and any
    word but a true one reads as false.
    """
    problems = []
    for name, spec in properties.items():
        variable = prefix + name.upper().replace("-", "_")
        text = environ.get(variable)
        types = spec.get("type")
        types = types if isinstance(types, list) else [types]
        if text is None:
            continue
        if "integer" in types and not re.fullmatch(r"\s*[+-]?[0-9]+\s*", text):
            problems.append(f"{variable} is {text[:MAX_QUOTED]!r}, not a whole number ({name})")
        if "boolean" in types and text.strip().lower() not in BOOLEAN_WORDS:
            problems.append(
                f"{variable} is {text[:MAX_QUOTED]!r}; {name} takes one of "
                f"{', '.join(BOOLEAN_WORDS)}"
            )
    return problems


def _strip_credentials(config: dict[str, t.Any]) -> None:
    """Whitespace around jwt_id or jwt_secret (a newline from a file) is removed, with a warning.

    Usersnap's keys never hold any; left in, it fails as a bare 401. The value is not logged.
    """
    for name in ("jwt_id", "jwt_secret"):
        value = config.get(name)
        if isinstance(value, str) and value.strip() != value:
            config[name] = value.strip()
            LOGGER.warning(
                "The %s setting had leading or trailing whitespace (a newline from a file?); "
                "it was removed (the value is not shown)",
                name,
            )


def _read_numbers(config: dict[str, t.Any], properties: dict[str, t.Any]) -> None:
    """``"30"`` as 30 for a number setting: the environment gives every value as text."""
    for name, spec in properties.items():
        value = config.get(name)
        types = spec.get("type")
        types = types if isinstance(types, list) else [types]
        if isinstance(value, str) and "number" in types:
            with contextlib.suppress(ValueError):  # else left for the schema check to name
                config[name] = float(value)
