"""SQLiteStore passes the store contract, on a file and in memory."""

from __future__ import annotations

from pathlib import Path

import pytest

import referralkit as rk
from referralkit.testing.contract import StoreContract


class TestSQLiteFileStore(StoreContract):
    @pytest.fixture(autouse=True)
    def _dir(self, tmp_path: Path) -> None:
        self._path = tmp_path / "contract.sqlite3"

    def make_store(self) -> rk.Store:
        return rk.SQLiteStore(self._path)


class TestSQLiteMemoryStore(StoreContract):
    def make_store(self) -> rk.Store:
        return rk.SQLiteStore(":memory:")
