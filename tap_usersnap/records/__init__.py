"""What a record holds and how it goes out.

Timestamps in one form, fields derived for analysts, values mended to the schema, the
schema files, and the message writer.
"""
