"""A state that names one partition twice (a hand-merged state), made one again.

The SDK stops every run on such a state ("State file contains duplicate entries for
partition"); the tap merges it before the SDK reads it, keeping the later bookmark.
"""

from __future__ import annotations

import json
import typing as t

from tap_usersnap.feedback.state import BOOKMARK
from tap_usersnap.records.timestamps import parse_timestamp

if t.TYPE_CHECKING:
    import logging


def merge_duplicate_partitions(state: dict[str, t.Any], logger: logging.Logger) -> None:
    """One partition per context in every stream's state, in place, with one WARNING each.

    A hand-merged state may name a project twice: the entry with the later bookmark is
    kept. The SDK would otherwise stop every run with "State file contains duplicate entries".
    """
    streams = state.get("bookmarks") if isinstance(state, dict) else None
    for name, stream_state in (streams or {}).items() if isinstance(streams, dict) else ():
        partitions = stream_state.get("partitions") if isinstance(stream_state, dict) else None
        if not isinstance(partitions, list):
            continue
        kept: dict[str, dict[str, t.Any]] = {}
        merged: list[t.Any] = []
        for entry in partitions:
            context = entry.get("context") if isinstance(entry, dict) else None
            if not isinstance(context, dict):
                merged.append(entry)
                continue
            key = json.dumps(context, sort_keys=True, default=str)
            first = kept.get(key)
            if first is None:
                kept[key] = entry
                merged.append(entry)
                continue
            later = _later_entry(first, entry)
            logger.warning(
                "The %s state names %s twice (bookmarks %s and %s): kept the later bookmark, %s",
                name,
                _describe_context(context),
                first.get(BOOKMARK),
                entry.get(BOOKMARK),
                later.get(BOOKMARK),
            )
            if later is entry:
                merged[merged.index(first)] = entry
                kept[key] = entry
        stream_state["partitions"] = merged


def _later_entry(first: dict[str, t.Any], second: dict[str, t.Any]) -> dict[str, t.Any]:
    """The partition entry whose bookmark is later (the second, if they cannot be compared)."""
    a, b = first.get(BOOKMARK), second.get(BOOKMARK)
    try:
        if isinstance(a, str) and isinstance(b, str):
            return first if parse_timestamp(a) > parse_timestamp(b) else second
    except ValueError:
        pass
    return second if b is not None or a is None else first


def _describe_context(context: dict[str, t.Any]) -> str:
    project_id = context.get("project_id")
    return f"project {project_id}" if len(context) == 1 and project_id else f"partition {context}"
