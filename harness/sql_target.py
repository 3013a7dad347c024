"""A Singer target on the SDK's own SQL sink, over SQLite: what target-snowflake is built on.

MeltanoLabs target-snowflake and TicketSwap target-redshift subclass ``singer_sdk.sql``'s
``SQLTarget``/``SQLSink`` and keep its ACTIVATE_VERSION: rows whose ``_sdc_table_version``
is older than the message's are deleted (``hard_delete``) or marked ``_sdc_deleted_at``;
rows with no version are never touched. Like those targets it merges on the stream's key
(they use MERGE; here the rows of the batch's keys are replaced). Tests feed it a tap's
output in-process: :func:`load`.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import typing as t

import sqlalchemy as sa
from singer_sdk import typing as th
from singer_sdk.sql import SQLConnector, SQLSink, SQLTarget
from typing_extensions import override

if t.TYPE_CHECKING:
    from pathlib import Path


class SQLiteConnector(SQLConnector):
    """SQLite through SQLAlchemy; a file per warehouse."""

    allow_column_add = True
    allow_merge_upsert = True
    allow_temp_tables = False

    @override
    def get_sqlalchemy_url(self, config: dict[str, t.Any]) -> str:
        return f"sqlite:///{config['database']}"

    @override
    def create_engine(self) -> sa.Engine:
        """Without a pool: each connection is closed when released (none left open)."""
        return sa.create_engine(self.sqlalchemy_url, poolclass=sa.pool.NullPool)


class SQLiteSink(SQLSink[SQLiteConnector]):
    """The SDK's SQL sink, merging on the key as the warehouse targets do."""

    connector_class = SQLiteConnector

    @override
    def process_batch(self, context: dict) -> None:
        records = [_json_columns(r) for r in {self._key(r): r for r in context["records"]}.values()]
        if self.key_properties and self.connector.table_exists(self.full_table_name):
            table = sa.Table(
                self.full_table_name.table,
                sa.MetaData(),
                *(sa.Column(key) for key in self.key_properties),
            )
            keys = [self._key(r) for r in records]
            # The SDK's own sink reaches its connection the same way.
            with self.connector._connect() as conn, conn.begin():
                conn.execute(
                    sa.delete(table).where(
                        sa.tuple_(*(table.c[k] for k in self.key_properties)).in_(keys)
                    )
                )
        self.bulk_insert_records(self.full_table_name, self.schema, records)

    def _key(self, record: dict[str, t.Any]) -> tuple[t.Any, ...]:
        return tuple(record.get(key) for key in self.key_properties)


def _json_columns(record: dict[str, t.Any]) -> dict[str, t.Any]:
    """Each value as SQLite takes it.

    Objects and arrays as JSON text (SQLite has no VARIANT column as Snowflake has), the
    ``_sdc_*`` datetimes as ISO text (sqlite3's own adapter is deprecated from Python 3.12).
    """
    return {k: _sqlite_value(v) for k, v in record.items()}


def _sqlite_value(value: t.Any) -> t.Any:
    if isinstance(value, dict | list):
        return json.dumps(value)
    return value.isoformat(" ") if isinstance(value, dt.datetime) else value


class TargetSQLite(SQLTarget):
    """target-sqlite-sdk: stands for target-snowflake in the tests."""

    name = "target-sqlite-sdk"
    default_sink_class = SQLiteSink
    config_jsonschema = th.PropertiesList(
        th.Property("database", th.StringType, required=True),
        th.Property("hard_delete", th.BooleanType, default=False),
        th.Property("add_record_metadata", th.BooleanType, default=True),
    ).to_dict()


def load(messages: t.Iterable[dict[str, t.Any]], database: Path, *, hard_delete: bool) -> None:
    """Load one run's Singer messages into the SQLite file, as a piped target would."""
    text = "".join(json.dumps(m) + "\n" for m in messages if m["type"] != "STATE")
    target = TargetSQLite(
        config={"database": str(database), "hard_delete": hard_delete, "add_record_metadata": True},
        validate_config=True,
    )
    target.listen(file_input=io.StringIO(text))


def live_ids(database: Path, table: str, key: str) -> set[t.Any]:
    """The keys of the rows not deleted (no ``_sdc_deleted_at``) in one table."""
    return stored_ids(database, table, key, live=True)


def stored_ids(database: Path, table: str, key: str, *, live: bool = False) -> set[t.Any]:
    """The keys of the rows in one table; with ``live``, only those not marked deleted."""
    engine = sa.create_engine(f"sqlite:///{database}")
    with engine.connect() as conn:
        columns = {c["name"] for c in sa.inspect(conn).get_columns(table)}
        marked = live and "_sdc_deleted_at" in columns
        where = " WHERE _sdc_deleted_at IS NULL" if marked else ""
        rows = conn.execute(sa.text(f"SELECT {key} FROM {table}{where}"))  # noqa: S608
        ids = {row[0] for row in rows}
    engine.dispose()
    return ids
