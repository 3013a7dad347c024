"""JSON schemas of the streams, one file per stream."""

import json
import typing as t
from importlib import resources

from singer_sdk import SchemaDirectory

#: Where every stream's ``StreamSchema`` finds its ``<stream name>.json``.
SCHEMAS = SchemaDirectory(resources.files(__name__))


def schema_of(stream: str) -> dict[str, t.Any]:
    """A stream's JSON schema, as the file holds it."""
    text = resources.files(__name__).joinpath(f"{stream}.json").read_text(encoding="utf-8")
    return t.cast("dict[str, t.Any]", json.loads(text))
