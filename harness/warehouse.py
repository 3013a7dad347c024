"""Tables that apply a tap's Singer messages the way Singer SQL targets do.

RECORD upserts on the stream's key and keeps the record's ``version`` as the row's table
version; a RECORD with ``_sdc_deleted_at`` set removes its row. ACTIVATE_VERSION removes
every row whose version is older than the message's; target-postgres also removes rows
whose version is unset, the SDK's own SQL sink (target-snowflake, target-redshift) keeps
them (``Warehouse(sdk_sink=True)``). With ``hard_delete`` the rows are deleted; by default
they are marked ``_sdc_deleted_at``: not live either way.
"""

from __future__ import annotations

import dataclasses
import typing as t


@dataclasses.dataclass
class Table:
    """One stream's live rows, by key."""

    key_properties: list[str]
    rows: dict[tuple[t.Any, ...], dict[str, t.Any]] = dataclasses.field(default_factory=dict)
    versions: dict[tuple[t.Any, ...], int | None] = dataclasses.field(default_factory=dict)

    def key(self, record: dict[str, t.Any]) -> tuple[t.Any, ...]:
        """The record's primary key values."""
        return tuple(record[k] for k in self.key_properties)


@dataclasses.dataclass
class Warehouse:
    """Every stream's table, fed message by message across runs."""

    tables: dict[str, Table] = dataclasses.field(default_factory=dict)
    #: Retire only rows of an older version, never unset ones (``singer_sdk.sql.SQLSink``).
    sdk_sink: bool = False

    def apply(self, messages: t.Iterable[dict[str, t.Any]]) -> None:
        """Apply one run's messages in order."""
        for message in messages:
            kind = message["type"]
            if kind == "SCHEMA":
                self.tables.setdefault(message["stream"], Table(message["key_properties"]))
            elif kind == "RECORD":
                self._record(self.tables[message["stream"]], message)
            elif kind == "ACTIVATE_VERSION":
                self._activate(self.tables[message["stream"]], message["version"], self.sdk_sink)

    def ids(self, stream: str, key: str) -> set[t.Any]:
        """The live rows' values of ``key``."""
        table = self.tables.get(stream)
        return {row[key] for row in table.rows.values()} if table else set()

    def row(self, stream: str, *key: t.Any) -> dict[str, t.Any]:
        """The live row with this key."""
        return self.tables[stream].rows[key]

    @staticmethod
    def _record(table: Table, message: dict[str, t.Any]) -> None:
        record = message["record"]
        key = table.key(record)
        if record.get("_sdc_deleted_at"):
            table.rows.pop(key, None)
            table.versions.pop(key, None)
            return
        table.rows[key] = record
        table.versions[key] = message.get("version")

    @staticmethod
    def _activate(table: Table, version: int, sdk_sink: bool) -> None:
        for key, row_version in list(table.versions.items()):
            if (not sdk_sink) if row_version is None else row_version < version:
                del table.rows[key]
                del table.versions[key]
