"""Every record keeps to its SCHEMA and stores in PostgreSQL, whatever the API sent.

One conform step serves every stream (:func:`conform`); feedback also gets derived fields
(docs/derived-fields.md). Nothing is skipped or changed silently: :class:`RunReport` logs
each skipped or altered thing by name (never its content), counts it and ends the run with
a summary. docs/architecture.md shows where each step runs.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import json
import logging
import math
import re
import threading
import time
import typing as t
from importlib import resources

import jsonschema

#: Bookmarks and emitted timestamps: UTC, microseconds, ``Z``; fixed width, so they compare
#: correctly as strings.
TIMESTAMP_EXAMPLE = "2024-03-01T12:00:00.000000Z"
#: How far a timestamp from outside may be ahead of this machine's clock (clocks differ).
FUTURE_TOLERANCE = dt.timedelta(minutes=5)
#: ``custom_data`` nested deeper than this is replaced by null (website visitors write it;
#: jsonb and the targets' JSON decoders stop far below what a hostile visitor can send).
MAX_CUSTOM_DATA_DEPTH = 64
#: Longest part of a bad value (an id, a timestamp, a name) quoted in a warning.
MAX_QUOTED = 40
#: The longest key a record may have: PostgreSQL's index on a key column holds about 2,700
#: bytes (Usersnap's ids are UUIDs, 36 characters).
MAX_KEY_LENGTH = 1000
#: The longest text read as a number (Python reads at most 4300 digits; a form's answer or a
#: count needs far fewer).
MAX_NUMBER_TEXT = 1000


def parse_timestamp(value: str) -> dt.datetime:
    """An ISO 8601 timestamp as an aware datetime; naive means UTC."""
    parsed = dt.datetime.fromisoformat(value.strip().upper().replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


def format_timestamp(moment: dt.datetime, timespec: str = "microseconds") -> str:
    """A datetime in the bookmark format (the year in 4 digits, which ``strftime`` drops)."""
    utc = moment.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return utc.isoformat(timespec=timespec) + "Z"


def is_canonical(value: t.Any) -> t.TypeGuard[str]:
    """Already in the bookmark format (Usersnap's own form), and a real instant: the fast path.

    ``2024-02-30T10:00:00.000000Z`` has the form but names no day, and a week date or an
    offset can have its length (``2024-01-01T10:00:00.0+0100Z``): neither may pass.
    """
    if not (
        type(value) is str
        and len(value) == len(TIMESTAMP_EXAMPLE)
        and value[4] == value[7] == "-"
        and value[10] == "T"
        and value[13] == value[16] == ":"
        and value[19] == "."
        and value[-1] == "Z"
    ):
        return False
    try:
        return dt.datetime.fromisoformat(value[:-1]).tzinfo is None
    except ValueError:
        return False


def is_timestamp(value: t.Any) -> t.TypeGuard[str]:
    """An ISO 8601 timestamp that UTC can hold (``0001-01-01T00:00:00+01:00`` cannot)."""
    if not isinstance(value, str):
        return False
    try:
        parse_timestamp(value).astimezone(dt.timezone.utc)
    except (ValueError, OverflowError):
        return False
    return True


def normalise_timestamp(value: str) -> str:
    """Any ISO 8601 timestamp (``Z``, offsets, fewer fraction digits) in the bookmark format."""
    if is_canonical(value):
        return value
    return format_timestamp(parse_timestamp(value))


def whole_second(value: str) -> str:
    """The instant floored to its second, as the API's filter takes it (``…T10:00:00Z``)."""
    return format_timestamp(parse_timestamp(value), "seconds")


def now_ceiling() -> str:
    """The latest instant a timestamp from outside may name now."""
    return format_timestamp(dt.datetime.now(dt.timezone.utc) + FUTURE_TOLERANCE)


#: Each JSON type: the Python types of its values, and how a message names it.
_JSON_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "string": ((str,), "a string"),
    "integer": ((int,), "an integer"),
    "number": ((float, int), "a number"),
    "boolean": ((bool,), "a boolean"),
    "object": ((dict,), "an object"),
    "array": ((list,), "a list"),
    "null": ((type(None),), "null"),
}
#: How a message names a JSON value by its Python type (an int is an integer).
_KINDS = {types[0]: kind for types, kind in _JSON_TYPES.values()}


def shape_problem(document: t.Any, shape: dict[str, t.Any]) -> str | None:
    """Where a JSON document from outside (a state, a catalog) departs from ``shape``.

    ``streams[0].schema is a string, not an object``, or ``streams[0] has no schema``;
    None if it keeps to it.
    """
    errors = jsonschema.Draft202012Validator(shape).iter_errors(document)
    error = jsonschema.exceptions.best_match(errors)
    if error is None:
        return None
    where = json_path(error.absolute_path) or "the document"
    if error.validator == "required":
        missing = next(k for k in error.validator_value if k not in error.instance)
        return f"{where} has no {missing}"
    expected = error.validator_value
    expected = _JSON_TYPES[expected][1] if expected in _JSON_TYPES else str(expected)
    return f"{where} is {_KINDS.get(type(error.instance), 'another value')}, not {expected}"


def json_path(parts: t.Iterable[str | int]) -> str:
    """Where in a JSON document a value is, as a person reads it: ``streams[0].schema``."""
    return "".join(f"[{p}]" if type(p) is int else f".{p}" for p in parts).lstrip(".")


def schema_of(stream: str) -> dict[str, t.Any]:
    """A stream's JSON schema, from its file."""
    text = resources.files("tap_usersnap.schemas").joinpath(f"{stream}.json").read_text("utf-8")
    return t.cast("dict[str, t.Any]", json.loads(text))


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
#: Control characters: a line break in text a log line quotes would forge another line.
_CONTROL_CHARACTERS = "\x00-\x1f\x7f-\x9f\u2028\u2029"
_CONTROL = re.compile(f"[{_CONTROL_CHARACTERS}]")
#: What no key may hold: control characters, and lone surrogates.
_UNFIT_FOR_KEY = re.compile(f"[{_CONTROL_CHARACTERS}\ud800-\udfff]")
_INTEGER = re.compile(r"-?(?:0|[1-9][0-9]{0,17})")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?")


@dataclasses.dataclass(frozen=True, slots=True)
class Shape:
    """What one schema node accepts: JSON types, timestamps, and the shapes of its parts."""

    types: frozenset[type]
    names: tuple[str, ...]
    timestamp: bool = False
    properties: dict[str, Shape] | None = None
    items: Shape | None = None
    #: ``additionalProperties: false``: an undeclared key is left out (a target validating
    #: the record against its SCHEMA would fail on it).
    closed: bool = False
    #: A value of one of :attr:`types` needs nothing more (no timestamp, no parts declared).
    plain: bool = True

    @classmethod
    def of(cls, schema: dict[str, t.Any]) -> Shape:
        """The shape of a JSON schema node (``type``, ``format``, ``properties``, ``items``)."""
        schema = _folded(schema)
        names = tuple(_listed(schema.get("type") or list(_JSON_TYPES)))
        properties = schema.get("properties")
        items = schema.get("items")
        timestamp = schema.get("format") == "date-time" and "string" in names  # else moot
        closed = schema.get("additionalProperties") is False
        return cls(
            types=frozenset(
                p for name in names if name in _JSON_TYPES for p in _JSON_TYPES[name][0]
            ),
            names=names,
            timestamp=timestamp,
            properties={k: cls.of(v) for k, v in (properties or {}).items()}
            if properties or closed
            else None,
            closed=closed,
            items=cls.of(items) if isinstance(items, dict) else None,
            plain=not (timestamp or properties or closed or isinstance(items, dict)),
        )


def _folded(schema: dict[str, t.Any]) -> dict[str, t.Any]:
    """``schema`` with its ``allOf`` parts folded in, as a value must meet each of them.

    A JSON array column declares its elements there (``labels``, ``ordered_inputs``).
    """
    parts = schema.get("allOf")
    if type(parts) is not list:
        return schema
    folded = {key: value for key, value in schema.items() if key != "allOf"}
    for part in (_folded(p) for p in parts if type(p) is dict):
        if "type" in part:
            names = _listed(part["type"])
            mine = _listed(folded.get("type", names))
            folded["type"] = [name for name in mine if name in names]
        if "format" in part:
            folded["format"] = part["format"]
        if type(part.get("properties")) is dict:
            properties = dict(folded.get("properties") or {})
            for key, value in part["properties"].items():
                properties[key] = _both(properties.get(key), value)
            folded["properties"] = properties
        if type(part.get("items")) is dict:
            folded["items"] = _both(folded.get("items"), part["items"])
    return folded


def _listed(names: t.Any) -> t.Any:
    """A schema's ``type``: one name, or a list of them, as a list."""
    return [names] if isinstance(names, str) else names


def _both(mine: t.Any, theirs: dict[str, t.Any]) -> dict[str, t.Any]:
    """A schema a value meets when it meets both (``mine`` may be absent)."""
    return theirs if mine is None else {"allOf": [mine, theirs]}


#: An array element that cannot be kept, until its array is compacted.
_LEFT_OUT: t.Any = object()


def conform(record: dict[str, t.Any], shape: Shape, *, check_text: bool = True) -> list[str]:
    """Make ``record`` keep to ``shape`` in place; the changes, a line per field, no value.

    A value of the wrong type is converted where nothing is lost (``"12"`` to 12, ``"false"``
    to false, a number or an object to its JSON text), else set to null, or left out of its
    array (an element's schema need not allow null); timestamps get the bookmark format; NUL
    and lone surrogates, which PostgreSQL text cannot hold, are cleaned (:func:`clean_text`).
    """
    changes: list[str] = []
    if shape.properties is not None:
        _conform(record, shape, changes)
    if check_text:
        changes += clean_text(record)
    return changes


def _conform(record: dict[str, t.Any], shape: Shape, changes: list[str]) -> None:
    properties, undeclared = shape.properties or {}, []
    for key, value in record.items():
        child = properties.get(key)
        if child is None:  # not declared: any JSON value will do, unless the shape is closed
            if shape.closed:
                undeclared.append(key)
        elif child.plain and type(value) in child.types:
            if type(value) is int and not _fits_bigint(value, child):
                changes.append(f"its {key} is beyond a 64-bit integer: emitted as null")
                record[key] = None
        elif not (child.timestamp and is_canonical(value)):
            record[key] = _mended(value, child, key, changes, None)
    for key in undeclared:
        del record[key]


def _conform_items(values: list[t.Any], shape: Shape, changes: list[str]) -> None:
    """Like :func:`_conform`, for an array's elements; one that cannot be kept is left out."""
    left_out = False
    for index, value in enumerate(values):
        if shape.plain and type(value) in shape.types:
            continue
        if not (shape.timestamp and is_canonical(value)):
            values[index] = new = _mended(value, shape, f"[{index}]", changes, _LEFT_OUT)
            left_out = left_out or new is _LEFT_OUT
    if left_out:
        values[:] = [value for value in values if value is not _LEFT_OUT]


def _mended(value: t.Any, shape: Shape, field: str, changes: list[str], lost: t.Any) -> t.Any:
    """``value`` as ``shape`` takes it (not a canonical timestamp); else ``lost``.

    A timestamp is normalised, another type converted if nothing is lost (a target would
    fail on it as it is), an object's or array's parts conformed in turn.
    """
    if shape.timestamp and value is not None:
        if is_timestamp(value):
            return normalise_timestamp(value)
        problem = "is not a timestamp;"
    elif type(value) in shape.types:
        start = len(changes)
        if shape.properties is not None and type(value) is dict:
            _conform(value, shape, changes)
            field += "."
        elif shape.items is not None and type(value) is list:
            _conform_items(value, shape.items, changes)
        # A change names its field from where it was found; each level adds its own name
        # on the way out, so a value that needs no change builds no path.
        if len(changes) > start:
            for number in range(start, len(changes)):
                changes[number] = changes[number].replace("its ", f"its {field}", 1)
        return value
    else:
        kind = "null" if value is None else type(value).__name__
        new = _lossless(value, shape)
        if new is not None:
            changes.append(f"its {field} was a {kind}: emitted as {type(new).__name__}")
            return new
        problem = f"was a {kind}, not {' or '.join(shape.names)}:"
    changes.append(f"its {field} {problem} {'emitted as null' if lost is None else 'left out'}")
    return lost


def _fits_bigint(value: int, shape: Shape) -> bool:
    """An integer column (PostgreSQL's bigint) holds it; a number column holds any."""
    return -(2**63) <= value < 2**63 or "integer" not in shape.names


def _lossless(value: t.Any, shape: Shape) -> t.Any:  # noqa: PLR0911 - one return per conversion
    names = shape.names
    if isinstance(value, str):
        text = value.strip()
        if "integer" in names and _INTEGER.fullmatch(text):
            return int(text)
        if "number" in names and len(text) <= MAX_NUMBER_TEXT and _NUMBER.fullmatch(text):
            number = float(text) if any(c in text for c in ".eE") else int(text)
            return number if type(number) is int or math.isfinite(number) else None  # 1e400
        if "boolean" in names and text.lower() in {"true", "false"}:
            return text.lower() == "true"
        return None
    if type(value) in (int, float):
        if "integer" in names and float(value).is_integer() and _fits_bigint(int(value), shape):
            return int(value)
        if "boolean" in names and value in {0, 1}:
            return bool(value)
    if value is not None and "string" in names and not shape.timestamp:
        return json.dumps(value, ensure_ascii=False)  # a boolean, number, object or array
    return int(value) if type(value) is bool and "integer" in names else None


def clean_text(record: dict[str, t.Any]) -> list[str]:
    """Remove NUL and replace lone surrogates in every string and key (without recursion).

    What was changed, one line per top-level field.
    """
    fields: set[str] = set()
    stack: list[tuple[t.Any, str]] = [(record, "")]
    while stack:
        container, field = stack.pop()
        if type(container) is dict:
            for key in [k for k in container if type(k) is str and holds_bad_text(k)]:
                clean = _clean(key)
                while clean in container:  # a sibling has that name: both values stay
                    clean += "\ufffd"
                container[clean] = container.pop(key)
                fields.add(field or _clean(key))
        slots = container.items() if type(container) is dict else enumerate(container)
        for slot, child in list(slots):
            name = field or str(slot)
            if type(child) is str and holds_bad_text(child):
                container[slot] = _clean(child)
                fields.add(name)
            elif type(child) in (dict, list):
                stack.append((child, name))
    return [
        f"its {name} held a NUL character or a lone surrogate: removed or replaced by U+FFFD"
        for name in sorted(fields)
    ]


def holds_bad_text(text: str) -> bool:
    """A NUL character or a lone surrogate, which PostgreSQL text cannot hold."""
    return "\x00" in text or _LONE_SURROGATE.search(text) is not None


def _clean(text: str) -> str:
    return _LONE_SURROGATE.sub("\ufffd", text.replace("\x00", ""))


def key_problem(value: t.Any, name: str) -> str | None:
    """Why ``value`` cannot key a row; None when it can.

    Text PostgreSQL cannot hold is refused, not cleaned: cleaned, it could take another row's.
    """
    if value is None or value == "":
        return f"it has no {name}"
    if not isinstance(value, str):
        return f"its {name} is not a string"
    if len(value) > MAX_KEY_LENGTH:
        return f"its {name} is {len(value)} characters long, more than a key column holds"
    if holds_bad_text(value):
        return f"its {name} holds a NUL character or a lone surrogate"
    if unfit_for_key(value):
        return f"its {name} holds a control character (a line break, say)"
    return None


def unfit_for_key(text: str) -> bool:
    """A control character or a lone surrogate: no id of Usersnap's holds one."""
    return _UNFIT_FOR_KEY.search(text) is not None


def one_line(text: str) -> str:
    """``text`` from the API with its control characters as spaces, for a log line to quote."""
    return _CONTROL.sub(" ", text)


def project_id_problem(value: t.Any) -> str | None:
    """Why ``value`` names no project the API can be asked about; None when it names one."""
    if isinstance(value, str) and value in {".", ".."}:
        return f"its project_id {value!r} names no URL path segment"
    return key_problem(value, "project_id")


def unusable_reason(item: t.Any) -> str | None:
    """Why a feedback item can be neither keyed nor bookmarked; None when it is fine."""
    if not isinstance(item, dict):
        return f"the entry is {'null' if item is None else 'a ' + type(item).__name__}"
    problem = key_problem(item.get("feedback_id"), "feedback_id")
    created_at = item.get("created_at")
    if problem is not None or is_timestamp(created_at):
        return problem
    if created_at is None:
        return "its created_at is missing or null"
    if not isinstance(created_at, str):
        return f"its created_at is a {type(created_at).__name__}, not a timestamp"
    return f"its created_at {created_at[:MAX_QUOTED]!r} is not an ISO 8601 timestamp"


def cut_deep_custom_data(item: dict[str, t.Any]) -> bool:
    """Replace a ``custom_data`` nested too deep to store by null (without recursion)."""
    level: list[t.Any] = [item.get("custom_data")]
    if type(level[0]) not in (dict, list):
        return False
    for _ in range(MAX_CUSTOM_DATA_DEPTH):
        level = [
            child
            for current in level
            for child in (current.values() if type(current) is dict else current)
            if type(child) in (dict, list)
        ]
        if not level:
            return False
    item["custom_data"] = None
    return True


def describe_item(item: t.Any, project: str) -> str:
    """``feedback #12 (id …) of project …``: what names an item without its content."""
    if not isinstance(item, dict):
        return f"an entry of project {project}"
    parts = []
    if isinstance(item.get("feedback_number"), int | str):
        parts.append(f"#{one_line(str(item['feedback_number'])[:MAX_QUOTED])}")
    if isinstance(item.get("feedback_id"), str) and item["feedback_id"]:
        parts.append(f"(id {one_line(item['feedback_id'][:MAX_QUOTED])})")
    return " ".join(["feedback", *parts, "of project", project])


def derived_fields(item: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """The analysis-ready fields of a conformed feedback item (see docs/derived-fields.md).

    ``conversation``: the typed texts in form order; ``label_names``: the labels' names;
    ``input_values``: every other answered input keyed by its label (a repeated label gets
    `` (2)``; an unlabelled input ``input_<order>``).
    """
    texts: list[str] = []
    values: dict[str, bool | int | float | str] = {}
    for position, entry in enumerate(form_order(item.get("ordered_inputs"))):
        answer, text, raw = entry.get("boolean_value"), entry.get("text_value"), entry.get("value")
        if type(answer) is bool:
            value: bool | int | float | str = answer
        elif type(text) is str:
            if text.strip():
                texts.append(text)
            continue
        elif type(raw) is str and raw:
            value = typed_value(raw)
        else:
            continue
        label = entry.get("label")
        if type(label) is not str or not label:
            order = entry.get("order")
            label = f"input_{order if isinstance(order, int) else position}"
        key, number = label, 1
        while key in values:
            number += 1
            key = f"{label} ({number})"
        values[key] = value
    labels = item.get("labels")
    names = [
        label["name"]
        for label in (labels if type(labels) is list else ())
        if type(label) is dict and type(label.get("name")) is str and label["name"]
    ]
    return {"conversation": texts, "label_names": names, "input_values": values}


def form_order(inputs: t.Any) -> list[dict[str, t.Any]]:
    """The inputs sorted by their ``order`` (stable; inputs without one last)."""
    if type(inputs) is not list:
        return []
    entries = [entry for entry in inputs if type(entry) is dict]
    previous = None
    for entry in entries:  # most forms come in order: no sort
        order = entry.get("order")
        if not isinstance(order, int) or (previous is not None and order < previous):
            return sorted(entries, key=_order_key)
        previous = order
    return entries


def _order_key(entry: dict[str, t.Any]) -> tuple[bool, int | float]:
    """Numbers (digits as text too) first, by value; any other ``order`` after them."""
    order = entry.get("order")
    if type(order) is str and order.strip().lstrip("-").isdigit():
        return (False, int(order))
    if type(order) is int or type(order) is float:
        return (False, order)
    return (True, 0)


def typed_value(text: str) -> int | float | str:
    """A number when the text is exactly that number's JSON form, else the text unchanged.

    ``"1.10"`` (a version?) and ``"007"`` (an id?) stay strings: the raw answer can always
    be read back from the derived one.
    """
    if len(text) > MAX_NUMBER_TEXT or not _DECIMAL.fullmatch(text):
        return text
    number: int | float = float(text) if "." in text else int(text)
    return number if repr(number) == text else text


def fit_flattened(record: dict[str, t.Any], shape: Shape, levels: int) -> None:
    """Fit a record to the columns the SDK's flattening makes of its schema, in place.

    The SDK flattens an object's value into columns only when it is an object, and passes
    undeclared keys through; a target that writes a column per schema property then stops.
    So a null object becomes its declared columns, each null, and a key the schema does not
    declare (at the top, or inside an object flattened into columns) is left out.
    """
    properties = shape.properties or {}
    for key in [k for k in record if k not in properties]:
        del record[key]
    if levels <= 0:
        return
    for key, child in properties.items():
        if child.properties is None or key not in record:
            continue
        if record[key] is None:
            record[key] = dict.fromkeys(child.properties)
        if isinstance(record[key], dict):
            fit_flattened(record[key], child, levels - 1)


#: Seconds between progress lines of a long read.
PROGRESS_SECONDS = 10.0


def project_label(name: object, project_id: str) -> str:
    """How logs name a project: ``'Web app' (<id>)``, or its id alone when it has no name."""
    return f"{name!r} ({project_id})" if name else str(project_id)


class RunReport:
    """The run's skipped and altered things; safe to use from several threads."""

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger
        self._lock = threading.Lock()
        #: How many of each kind of warning (``skipped``, ``altered``, ...) the run gave.
        self._counts: collections.Counter[str] = collections.Counter()
        #: The projects and streams named by each kind of warning that lists them.
        self._names: collections.defaultdict[str, list[str]] = collections.defaultdict(list)
        #: Each refused project's id, with the answer (the run fails at its end).
        self.refused_projects: dict[str, str] = {}
        #: Why the run must fail at its end although every other project was delivered.
        self.failures: list[str] = []
        self._next_progress = time.monotonic() + PROGRESS_SECONDS

    def _warn(self, kind: str, message: str, *args: object, count: int = 1, name: str = "") -> None:
        """Log a warning now and count it (and ``name``) under ``kind`` for the summary."""
        self._logger.warning(message, *args)
        with self._lock:
            self._counts[kind] += count
            if name:
                self._names[kind].append(name)

    def skipped_item(self, what: str, problem: str, count: int = 1) -> None:
        """An item (or ``count``) that cannot be loaded: skipped, the others go on."""
        self._warn("skipped", "Skipped %s: %s", what, problem, count=count)

    def altered_item(self, what: str, change: str) -> None:
        """A record emitted with a value replaced."""
        self._warn("altered", "Changed %s: %s", what, change)

    def noted_item(self, what: str, problem: str) -> None:
        """A record emitted as it came, with something the run had to work around."""
        self._warn("noted", "Noted %s: %s", what, problem)

    def refused_project(self, project: str, project_id: str, error: Exception) -> None:
        """A project Usersnap refuses: the others go on, the run fails at its end (one ERROR)."""
        self._logger.warning("%s; skipping project %s, the other projects continue", error, project)
        with self._lock:
            self.refused_projects.setdefault(project_id, getattr(error, "answer", str(error)))

    def refused_endpoint(self, what: str, error: Exception) -> None:
        """An endpoint the run can do without was refused: skipped, the run goes on."""
        self._warn("refused", "%s; skipped %s, the rest of the run continues", error, what)

    def detection_skipped(self, project: str, error: Exception) -> None:
        """A project's deletion count failed: not checked this run, its new items still load."""
        self._warn(
            "unchecked",
            "Deletion detection skipped for project %s this run (its new feedback still "
            "loads; the next run counts again): %s",
            project,
            error,
            name=project,
        )

    def deletes_held(self, what: str, why: str) -> None:
        """No ACTIVATE_VERSION for ``what``: every row stays, the next run tries again."""
        self._warn(
            "held",
            "Deletions not applied to %s, every row stays and the next run tries again: %s",
            what,
            why,
            name=what,
        )

    def progress(self, project: str, read: int, expected: int | None) -> None:
        """A project's items read so far; one line every :data:`PROGRESS_SECONDS` at most."""
        now = time.monotonic()
        if now < self._next_progress:
            return
        self._next_progress = now + PROGRESS_SECONDS
        of = f" of {expected}" if expected and expected > read else ""
        self._logger.info("Progress: project %s, %d%s items read", project, read, of)

    def finish(self) -> str | None:
        """Log the summary; why the run fails at its end (a refused project), if it must."""
        counts, unchecked = self._counts, self._names["unchecked"]
        if counts["skipped"] or counts["altered"] or counts["refused"]:
            self._logger.warning(
                "Run summary: %d item(s) skipped, %d emitted with a value replaced, %d "
                "endpoint(s) refused; each is named in a warning above",
                counts["skipped"],
                counts["altered"],
                counts["refused"],
            )
        if counts["noted"]:
            self._logger.warning(
                "Run summary: %d feedback item(s) emitted with a warning (named above)",
                counts["noted"],
            )
        if unchecked:
            self._logger.warning(
                "Run summary: deletions not checked this run for %d project(s) (their count "
                "failed: %s); the next run checks again",
                len(unchecked),
                ", ".join(unchecked),
            )
        if self._names["held"]:
            self._logger.warning(
                "Run summary: deletions held back for %s (a warning above says why); "
                "nothing was removed from them",
                ", ".join(dict.fromkeys(self._names["held"])),
            )
        failures = list(self.failures)
        if self.refused_projects:
            names = ", ".join(repr(p) for p in self.refused_projects)
            answers = "; ".join(f"{p!r}: {a}" for p, a in self.refused_projects.items())
            failures.append(
                f"Skipped {len(self.refused_projects)} Usersnap project(s) that Usersnap refused "
                f"or does not know: {names}; every other project was synced, the skipped "
                f"one(s) keep their rows and are tried again next run (Usersnap answered "
                f"{answers}). Check the project_ids setting and the key's access if the "
                "project should be read"
            )
        return ". ".join(failures) if failures else None
