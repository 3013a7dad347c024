"""Flattened records that keep to their flattened schema.

With ``flattening_enabled``, the SDK (0.54) flattens each object property that declares
``properties`` into one column per property (``screenshot__annotated_image_url``) and
drops the object's own key from the schema. Its record flattening only does the same
when the value is an object: a null ``screenshot`` stays ``"screenshot": null``, a key
that is not in the schema. Undeclared keys inside a flattened object
(``client__device_pixel_ratio``) and undeclared top-level keys pass through as well.
Targets that write a column per schema property (meltanolabs-target-csv) then stop, and
others (target-postgres) drop the key without a word.

:func:`flattened_columns` tells, once per stream map, the columns of the flattened schema
it announced in its SCHEMA message; :func:`keep_to_columns` keeps each mapped record to
them: a null object becomes nulls in each of its columns, and keys without a column are
left out (they are still in the unflattened record, when flattening is off).
"""

from __future__ import annotations

import typing as t

if t.TYPE_CHECKING:
    from singer_sdk.mapper import StreamMap


def flattened_columns(stream_map: StreamMap) -> tuple[t.Collection[str], str] | None:
    """The stream map's flattened columns and separator; None if it does not flatten."""
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
