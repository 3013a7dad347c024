"""Every record keeps to its SCHEMA and stores in PostgreSQL, whatever the API sent.

A target rejects a whole load for one value of the wrong type, a NUL character (PostgreSQL
text cannot hold one) or a lone surrogate (no UTF-8 for it), and rejects it again on every
run. So each value is checked against the stream's schema file: one of the wrong type is
converted where nothing is lost (``"12"`` to 12, ``"false"`` to false, a number to its text,
an object to its JSON text) or else set to null; NUL characters are removed and lone
surrogates replaced by U+FFFD, in keys too. Each change is one WARNING naming the item and
the field (never the value), counted in the run's summary.

The usual item costs one pass over its declared fields; the text walk runs only for pages
whose body holds an escaped NUL or a lone surrogate escape (:func:`body_needs_text_check`):
an escaped emoji, a surrogate pair, does not count.
"""

from __future__ import annotations

import dataclasses
import json
import re
import typing as t

_PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
    "null": (type(None),),
}
#: The escapes that may spell a NUL or half of a surrogate pair, in a JSON body.
_TEXT_ESCAPES = re.compile(rb"\\u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})")
_HIGH_SURROGATE = range(0xD800, 0xDC00)
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_INTEGER = re.compile(r"-?(?:0|[1-9][0-9]{0,17})")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")


@dataclasses.dataclass(frozen=True)
class Shape:
    """What one schema node accepts: JSON types, and the shapes of its parts."""

    types: frozenset[type]
    names: tuple[str, ...]
    properties: dict[str, Shape] | None = None
    items: Shape | None = None


def shape_of(schema: dict[str, t.Any]) -> Shape:
    """The :class:`Shape` of a JSON schema node (``type``, ``properties``, ``items``, ``allOf``)."""
    for part in schema.get("allOf") or []:
        schema = {**part, **{k: v for k, v in schema.items() if k != "allOf"}}
    names = schema.get("type") or list(_PYTHON_TYPES)
    names = tuple([names] if isinstance(names, str) else names)
    types = frozenset(p for name in names for p in _PYTHON_TYPES.get(name, ()))
    properties = schema.get("properties")
    return Shape(
        types=types,
        names=names,
        properties={k: shape_of(v) for k, v in properties.items()} if properties else None,
        items=shape_of(schema["items"]) if isinstance(schema.get("items"), dict) else None,
    )


def body_needs_text_check(body: bytes) -> bool:
    """The raw body may hold a NUL or a lone surrogate (JSON can send them only escaped).

    A surrogate pair, as an emoji outside the BMP is escaped, needs no walk: only a NUL,
    a high half not followed at once by a low half, or a low half on its own does.
    """
    paired_at = -1  # where the low half of the last high half must start
    for escape in _TEXT_ESCAPES.finditer(body):
        start = escape.start()
        if _escaped_backslash(body, start):  # ``\\u0000`` is text, not an escape
            continue
        if paired_at not in (-1, start):
            return True  # the last high half was not followed by a low half
        code, low_expected = int(escape[0][2:], 16), paired_at == start
        if code == 0 or (code in _HIGH_SURROGATE) == low_expected:
            return True  # a NUL, two high halves in a row, or a low half on its own
        paired_at = escape.end() if code in _HIGH_SURROGATE else -1
    return paired_at != -1


def _escaped_backslash(body: bytes, start: int) -> bool:
    """Whether the backslash at ``start`` is escaped (an odd run of backslashes before it)."""
    run = start
    while run > 0 and body[run - 1] == 0x5C:  # noqa: PLR2004 - a backslash
        run -= 1
    return (start - run) % 2 == 1


def mend(record: dict[str, t.Any], shape: Shape, *, check_text: bool) -> list[str]:
    """Make ``record`` keep to ``shape`` in place; what was changed, one line per field."""
    changes: list[str] = []
    if shape.properties is not None:
        _conform(record, shape.properties, "", changes)
    if check_text:
        _clean_text(record, changes)
    return changes


def _conform(
    record: dict[str, t.Any], properties: dict[str, Shape], prefix: str, changes: list[str]
) -> None:
    for key, value in record.items():
        shape = properties.get(key)
        if shape is None:
            continue  # not declared: any JSON value will do
        if type(value) not in shape.types:
            record[key] = _converted(value, shape, f"{prefix}{key}", changes)
        elif shape.properties is not None and type(value) is dict:
            _conform(value, shape.properties, f"{prefix}{key}.", changes)
        elif shape.items is not None and type(value) is list:
            _conform_items(value, shape.items, f"{prefix}{key}", changes)


def _conform_items(values: list[t.Any], shape: Shape, field: str, changes: list[str]) -> None:
    for index, value in enumerate(values):
        if type(value) not in shape.types:
            values[index] = _converted(value, shape, f"{field}[{index}]", changes)
        elif shape.properties is not None and type(value) is dict:
            _conform(value, shape.properties, f"{field}[{index}].", changes)


def _converted(value: t.Any, shape: Shape, field: str, changes: list[str]) -> t.Any:
    """The value in a type the shape accepts, losing nothing; else None."""
    new = _lossless(value, shape)
    kind = "null" if value is None else type(value).__name__
    if new is None:
        changes.append(f"its {field} was a {kind}, not {' or '.join(shape.names)}: emitted as null")
    else:
        changes.append(f"its {field} was a {kind}: emitted as {type(new).__name__}")
    return new


def _lossless(value: t.Any, shape: Shape) -> t.Any:  # noqa: PLR0911 - one return per conversion
    names = shape.names
    if isinstance(value, str):
        text = value.strip()
        if "integer" in names and _INTEGER.fullmatch(text):
            return int(text)
        if "number" in names and _NUMBER.fullmatch(text):
            return float(text) if any(c in text for c in ".eE") else int(text)
        if "boolean" in names and text.lower() in {"true", "false"}:
            return text.lower() == "true"
        return None
    if type(value) is bool:
        if "string" in names:
            return "true" if value else "false"
        return int(value) if "integer" in names else None
    if isinstance(value, int | float):
        if "integer" in names and float(value).is_integer():
            return int(value)
        if "boolean" in names and value in {0, 1}:
            return bool(value)
        return json.dumps(value) if "string" in names else None
    if isinstance(value, dict | list) and "string" in names:
        return json.dumps(value, ensure_ascii=False)
    return None


def _clean_text(record: dict[str, t.Any], changes: list[str]) -> None:
    """Remove NUL and replace lone surrogates in every string and key, without recursion."""
    fields: set[str] = set()
    stack: list[tuple[t.Any, str]] = [(record, "")]
    while stack:
        container, field = stack.pop()
        if type(container) is dict:
            for key in [k for k in container if type(k) is str and _dirty(k)]:
                container[_clean(key)] = container.pop(key)
                fields.add(field or _clean(key))
        slots = container.items() if type(container) is dict else enumerate(container)
        for slot, child in list(slots):
            name = field or str(slot)
            if type(child) is str and _dirty(child):
                container[slot] = _clean(child)
                fields.add(name)
            elif type(child) in (dict, list):
                stack.append((child, name))
    changes += [
        f"its {name} held a NUL character or a lone surrogate: removed or replaced by U+FFFD"
        for name in sorted(fields)
    ]


def _dirty(text: str) -> bool:
    return "\x00" in text or _LONE_SURROGATE.search(text) is not None


def _clean(text: str) -> str:
    return _LONE_SURROGATE.sub("\ufffd", text.replace("\x00", ""))
