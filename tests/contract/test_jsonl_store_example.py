"""The example store of docs/stores.md (examples/jsonl_store.py) passes the store contract."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

import referralkit as rk
from referralkit.testing.contract import StoreContract

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
from jsonl_store import JsonlStore

AT = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


class TestJsonlStore(StoreContract):
    """The example store passes the contract, on a file in a temporary directory."""

    @pytest.fixture(autouse=True)
    def _file(self, tmp_path: Path) -> None:
        self._path = tmp_path / "store.jsonl"

    def make_store(self) -> rk.Store:
        return JsonlStore(self._path)

    def test_reopening_the_file_gives_an_identical_dump(self, store: rk.Store) -> None:
        """A new store on the same file replays it into the same records, in the same order."""
        self.commit(store, self.write_one_of_each)
        self.commit(
            store,
            lambda u: u.participants.put(rk.ParticipantRecord("contract", "bob", AT, None)),
            lambda u: u.counters.add(("contract", "referrals", "alice"), Decimal("-0.5")),
            lambda u: u.outbox.mark_failed("ntf-1", AT, "timeout"),
        )
        with store.unit_of_work() as uow:  # left without commit: not in the file either
            uow.participants.set_email("contract", "carol", "carol@example.com")
        assert JsonlStore(self._path).dump() == store.dump()

    def test_a_line_torn_by_a_crash_is_dropped_on_open(self, store: rk.Store) -> None:
        """An unterminated last line is a commit that never finished: reopening drops it."""
        self.commit(store, self.write_one_of_each)
        before = store.dump()
        with self._path.open("a", encoding="utf-8") as file:
            file.write('{"$map":{"events":[')
        assert JsonlStore(self._path).dump() == before
        assert self._path.read_text("utf-8").endswith("\n")


class TestJsonlStoreReplayedForEveryUnit(StoreContract):
    """The contract passes when every unit of work runs on a store freshly replayed from the
    file, so replay rebuilds every table, index and order exactly."""

    class Reopening:
        def __init__(self, path: Path) -> None:
            self.path = path

        def unit_of_work(self) -> rk.UnitOfWork:
            return JsonlStore(self.path).unit_of_work()

        def dump(self) -> dict[str, list[object]]:
            return JsonlStore(self.path).dump()

    @pytest.fixture(autouse=True)
    def _file(self, tmp_path: Path) -> None:
        self._path = tmp_path / "store.jsonl"

    def make_store(self) -> rk.Store:
        return self.Reopening(self._path)
