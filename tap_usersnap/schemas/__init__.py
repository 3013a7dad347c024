"""The streams' JSON schemas, one file per stream."""
