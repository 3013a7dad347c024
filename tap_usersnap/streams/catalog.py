"""A catalog from outside always keeps each stream's primary and replication keys.

A hand-written catalog may leave out ``inclusion`` or the keys, or deselect a key; records
without their key cannot be loaded, and without ``created_at`` not bookmarked. The SDK builds
SCHEMA messages (properties and key_properties) from the input catalog, so the entry itself
is corrected, not only the stream.
"""

from __future__ import annotations

import typing as t

from singer_sdk.singerlib import Metadata

if t.TYPE_CHECKING:
    from singer_sdk.singerlib import Catalog


def keep_keys(catalog: Catalog, stream: str, keys: list[str], replication_key: str | None) -> None:
    """Name the keys in the stream's entry and mark them always included."""
    entry = catalog.get_stream(stream)
    if entry is None:
        return
    entry.key_properties = keys
    entry.replication_key = replication_key
    for key in [*keys, *([replication_key] if replication_key else [])]:
        breadcrumb = ("properties", key)
        metadata = entry.metadata.get(breadcrumb)
        if metadata is None:
            entry.metadata[breadcrumb] = Metadata(inclusion=Metadata.InclusionType.AUTOMATIC)
        else:
            metadata.inclusion = Metadata.InclusionType.AUTOMATIC
