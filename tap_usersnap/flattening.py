"""Flattened records that keep to their flattened schema.

With ``flattening_enabled``, the SDK (0.54) flattens each object property that declares
``properties`` into one column per property (``screenshot__annotated_image_url``) and
drops the object's own key from the schema. Its record flattening only does the same
when the value is an object: a null ``screenshot`` stays ``"screenshot": null``, a key
that is not in the schema. Undeclared keys inside a flattened object
(``client__device_pixel_ratio``) and undeclared top-level keys pass through as well.
Targets that write a column per schema property (meltanolabs-target-csv) then stop, and
others (target-postgres) drop the key without a word.

:func:`map_record` applies a stream map, then keeps a flattened record to the columns of
the flattened schema that stream map announced in its SCHEMA message: a null object
becomes nulls in each of its columns, and keys without a column are left out (they are
still in the unflattened record, when flattening is off).
"""

from __future__ import annotations

import typing as t

if t.TYPE_CHECKING:
    from singer_sdk.mapper import StreamMap


def map_record(stream_map: StreamMap, record: dict[str, t.Any]) -> dict[str, t.Any] | None:
    """``stream_map.transform(record)``; if it flattens, only the flattened schema's keys."""
    mapped = stream_map.transform(record)
    options = stream_map.flattening_options
    if mapped is None or options is None or not stream_map.flattening_enabled:
        return mapped
    return keep_to_columns(mapped, stream_map.transformed_schema["properties"], options.separator)


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
