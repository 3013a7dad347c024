"""JSON schemas of the streams, one file per stream."""

from importlib import resources

from singer_sdk import SchemaDirectory

#: Where every stream's ``StreamSchema`` finds its ``<stream name>.json``.
SCHEMAS = SchemaDirectory(resources.files(__name__))
