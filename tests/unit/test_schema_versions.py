"""SQLiteStore refuses a database written by a newer schema version or one older than 2,
and writes nothing; it migrates a version-2 database to 3 in place."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import referralkit as rk
from referralkit import sql


def _set_version(path: Path, version: int) -> None:
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("UPDATE rk_schema SET version = ? WHERE id = 1", (version,))
    conn.close()


def _version(path: Path) -> int:
    conn = sqlite3.connect(path)
    (version,) = conn.execute("SELECT version FROM rk_schema").fetchone()
    conn.close()
    return int(version)


def test_a_new_database_records_the_current_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "rk.sqlite3"
    rk.SQLiteStore(str(path)).close()
    assert _version(path) == sql.SCHEMA_VERSION == 3


@pytest.mark.parametrize("offset", [1, -2])
def test_another_schema_version_is_refused_naming_both_versions(
    tmp_path: Path, offset: int
) -> None:
    """A newer version, and version 1 (older than the one migrated in place), are refused."""
    path = tmp_path / "rk.sqlite3"
    rk.SQLiteStore(str(path)).close()
    other = sql.SCHEMA_VERSION + offset
    _set_version(path, other)
    word = "newer" if offset > 0 else "older"
    with pytest.raises(rk.SchemaVersionError, match=f"schema version {other}, {word} than"):
        rk.SQLiteStore(str(path))
    assert _version(path) == other  # refused without writing
