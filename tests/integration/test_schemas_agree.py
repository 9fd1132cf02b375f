"""SQLiteStore's DDL and referralkit.sql.metadata describe the same tables and columns."""

from __future__ import annotations

import sqlite3

import pytest

from referralkit._adapters.sqlite import _SCHEMA

sql = pytest.importorskip("referralkit.sql", reason="needs the 'sqlalchemy' extra")


def sqlite_tables() -> dict[str, list[str]]:
    conn = sqlite3.connect(":memory:")
    for statement in _SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)
    names = [
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'rk_%'"
        )
    ]
    return {n: [r[1] for r in conn.execute(f"PRAGMA table_info({n})")] for n in sorted(names)}


def test_both_stores_define_the_same_tables_with_the_same_columns_in_order() -> None:
    """A column added to one store's schema and not the other fails here."""
    metadata_tables = {
        table.name: [column.name for column in table.columns]
        for table in sql.metadata.sorted_tables
    }
    assert sqlite_tables() == dict(sorted(metadata_tables.items()))


def test_both_stores_write_the_same_schema_version() -> None:
    from referralkit._adapters import sqlite

    assert sqlite.SCHEMA_VERSION == sql.SCHEMA_VERSION


def sqlite_indexes() -> dict[str, tuple[str, list[str]]]:
    conn = sqlite3.connect(":memory:")
    for statement in _SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)
    rows = conn.execute(
        "SELECT name, tbl_name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
    ).fetchall()
    return {
        name: (table, [r[2] for r in conn.execute(f"PRAGMA index_info({name})")])
        for name, table in sorted(rows)
    }


def test_both_stores_define_the_same_indexes() -> None:
    """The explicit indexes (not the ones primary keys and unique constraints make) agree,
    so the indexed queries the engine relies on are indexed on every store. A partial
    index is compared by name and table only: the metadata's version leads with the
    columns of its condition, for MariaDB, which has no partial indexes."""
    metadata_indexes = {
        index.name: (table.name, [column.name for column in index.columns])
        for table in sql.metadata.sorted_tables
        for index in table.indexes
    }
    partial = {
        index.name
        for table in sql.metadata.sorted_tables
        for index in table.indexes
        if index.dialect_options["sqlite"]["where"] is not None
    }
    ours = sqlite_indexes()
    assert sorted(ours) == sorted(metadata_indexes)
    for name in sorted(metadata_indexes):
        table, columns = metadata_indexes[name]
        assert ours[name][0] == table, name
        if name not in partial:
            assert ours[name][1] == columns, name
    assert "rk_outbox_fresh" in partial
