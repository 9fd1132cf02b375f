"""Events found by key: ``event_key``, ``events_about`` with and without a store's
``about()``, the operator calls that use it (re-attribution, backfill, erasure), and the
migration of a version-2 SQLite database."""

from __future__ import annotations

import re
import sqlite3
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from dateutil.relativedelta import relativedelta

import referralkit as rk
from referralkit._erasure import redact_events
from referralkit._ports import events_about
from referralkit._values.records import EventRecord, Outcome

START = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
P = "keys"


def _usd(amount: str) -> rk.Money:
    return rk.Money(amount, "USD")


# -- stores whose event log lacks a method ----------------------------------------------------
class _Log:
    """An event log without some of its methods (``about``: a store written before it)."""

    def __init__(self, log: Any, missing: frozenset[str]) -> None:
        self._log, self._missing = log, missing

    def __getattr__(self, name: str) -> Any:
        if name in self._missing:
            raise AttributeError(name)
        return getattr(self._log, name)


class _Unit:
    def __init__(self, inner: Any, missing: frozenset[str]) -> None:
        self._inner, self._missing = inner, missing

    @property
    def events(self) -> _Log:
        return _Log(self._inner.events, self._missing)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def __enter__(self) -> _Unit:
        self._inner.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._inner.__exit__(*exc)


class _Without:
    """A store whose units' event logs lack ``missing``."""

    def __init__(self, inner: Any, *missing: str) -> None:
        self.inner, self._missing = inner, frozenset(missing)

    def unit_of_work(self) -> _Unit:
        return _Unit(self.inner.unit_of_work(), self._missing)

    def dump(self) -> Any:
        return self.inner.dump()


# -- a program with colliding keys ----------------------------------------------------------
def _program() -> rk.Program:
    return rk.Program(
        id=P,
        version=1,
        effective_at=START - timedelta(days=1),
        currency="USD",
        policies=[
            rk.DoubleSided(referrer=rk.Cash(_usd("20.00")), referee=rk.Credit(_usd("10.00")))
        ],
        hold=relativedelta(days=30),
    )


def _events(code: str) -> list[rk.Event]:
    """Bob's click, sign-up, purchases, a refund and a chargeback; carol's order whose id is
    "bob" and a click whose visitor id is "bob" (keys of other kinds equal to bob's id)."""
    at = START
    return [
        rk.Click(event_id="c-1", at=at, code=code, visitor_id="v-bob", metadata={"ua": "x"}),
        rk.Click(event_id="c-2", at=at, visitor_id="bob", metadata={"ua": "y"}),
        rk.Click(event_id="c-3", at=at, code=code),
        rk.Signup(
            event_id="s-bob",
            participant_id="bob",
            at=at + timedelta(minutes=1),
            code=code,
            visitor_id="v-bob",
            email="bob@example.com",
            metadata={"form": "a"},
        ),
        rk.Signup(
            event_id="s-carol", participant_id="carol", at=at, code=code, email="c@example.com"
        ),
        rk.Signup(event_id="s-dave", participant_id="dave", at=at),
        rk.Signup(event_id="s-erin", participant_id="erin", at=at, visitor_id="v-erin"),
        rk.Purchase(
            event_id="p-b1",
            participant_id="bob",
            order_id="order-b1",
            amount=_usd("80.00"),
            at=at + timedelta(hours=1),
            metadata={"cart": 1},
        ),
        rk.Purchase(
            event_id="p-c1",
            participant_id="carol",
            order_id="bob",
            amount=_usd("50.00"),
            at=at + timedelta(hours=1),
        ),
        rk.Refund(
            event_id="r-b1",
            refund_id="refund-b1",
            order_id="order-b1",
            amount=_usd("20.00"),
            at=at + timedelta(hours=2),
            metadata={"why": "size"},
        ),
        rk.Refund(
            event_id="r-c1",
            refund_id="refund-c1",
            order_id="bob",
            amount=_usd("50.00"),
            at=at + timedelta(hours=2),
            metadata={"why": "late"},
        ),
        rk.Purchase(
            event_id="p-b2",
            participant_id="bob",
            order_id="order-b2",
            amount=_usd("30.00"),
            at=at + timedelta(hours=3),
        ),
        rk.Chargeback(
            event_id="cb-b2",
            chargeback_id="cb-1",
            order_id="order-b2",
            at=at + timedelta(hours=4),
            metadata={"bank": "z"},
        ),
        rk.Purchase(
            event_id="p-e1",
            participant_id="erin",
            order_id="order-e1",
            amount=_usd("40.00"),
            at=at + timedelta(hours=5),
        ),
    ]


def _run(store: Any, operator_store: Any) -> tuple[list[Any], str]:
    """Handle the events on ``store``, then make the operator's calls through
    ``operator_store`` (the same records): what they return, each logged event's metadata,
    and the dump (as text, the random codes replaced by names and digests by a word)."""
    engine = rk.Engine(_program(), store, clock=rk.ManualClock(START))
    codes = {engine.issue_code("alice"): "ALICE", engine.issue_code("dave"): "DAVE"}
    for event in _events(next(iter(codes))):
        engine.handle(event)
    operator = rk.Engine(_program(), operator_store, clock=rk.ManualClock(START))
    at = START + timedelta(days=1)
    results: list[Any] = [
        operator.reattribute("bob", "dave", actor="ops", reason="test", now=at).referrer_id,
        operator.reattribute("erin", "dave", actor="ops", reason="test", now=at).referrer_id,
        operator.erase_participant("bob"),
        operator.erase_participant("erin"),
    ]
    with operator_store.unit_of_work() as uow:
        results.append(redact_events(uow, P, "bob"))  # erased already: nothing left
        results.append(redact_events(uow, P, "carol"))
    dump = store.dump()
    results.append({r.event_id: dict(r.event.metadata) for r in dump["events"]})
    tables = dict(dump)
    tables["codes"] = sorted((c.participant_id, codes[c.code]) for c in tables["codes"])
    tables["counters"] = sorted(
        ((pid, name, codes.get(subject, subject)), value)
        for (pid, name, subject), value in tables["counters"]
    )
    text = re.sub("[0-9a-f]{64}", "digest", repr(tables))  # digests of payloads with codes
    for code, name in codes.items():
        text = text.replace(code, name)
    return results, text


@pytest.fixture(params=["memory", "sqlite"])
def make_store(request: pytest.FixtureRequest) -> Any:
    return rk.InMemoryStore if request.param == "memory" else (lambda: rk.SQLiteStore(":memory:"))


def test_operator_calls_give_the_same_records_with_and_without_about(make_store: Any) -> None:
    """Re-attribution, backfill and erasure give the same results and records through a
    store's about() and through the whole-log fallback of a store without it."""
    store = make_store()
    keyed = _run(store, store)
    plain_store = make_store()
    plain = _run(plain_store, _Without(plain_store, "about"))
    assert keyed == plain
    with store.unit_of_work() as uow:
        events = {r.event_id: r.event for _, r in uow.events.since(P, 0, 100)}
    assert events["c-1"].visitor_id != "v-bob"  # erased with bob
    assert events["c-2"].visitor_id == "bob"  # a visitor id equal to bob's id: not bob's
    metadata = keyed[0][-1]
    assert metadata["c-2"] == {"ua": "y"}
    assert metadata["c-1"] == metadata["r-b1"] == metadata["cb-b2"] == {}
    assert keyed[0][:2] == ["dave", "dave"]
    # bob's erasure left carol's refund of her order "bob" alone: carol's erases her
    # sign-up's email and that refund's metadata (her purchase has nothing to lose).
    assert keyed[0][4:6] == [0, 2]


def test_operator_calls_do_not_read_the_whole_log(make_store: Any) -> None:
    """With a store that has about(), re-attribution, backfill and erasure never page
    through the log with since()."""
    reference = make_store()
    want = _run(reference, reference)
    store = make_store()
    assert _run(store, _Without(store, "since")) == want


def test_event_key_of_each_event_type() -> None:
    """Sign-ups and purchases are keyed by participant, refunds and chargebacks by order,
    clicks by visitor (None without one)."""
    keys = {e.event_id: rk.event_key(e) for e in _events("CODE")}
    assert keys["c-1"] == "v-bob"
    assert keys["c-3"] is None
    assert keys["s-bob"] == keys["p-b1"] == keys["r-c1"] == "bob"
    assert keys["r-b1"] == "order-b1"
    assert keys["cb-b2"] == "order-b2"


# -- the migration of a version-2 SQLite database -------------------------------------------
def _records() -> list[EventRecord]:
    events = _events("CODE")
    return [
        EventRecord(program, e.event_id, f"d-{e.event_id}", e, Outcome(e.event_id, e.kind))
        for program in (P, "other")
        for e in events
    ]


def _as_version_2(path: Path) -> None:
    """Make the database what schema 2 was: no event_key column, no index, version 2."""
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("DROP INDEX rk_events_key")
        conn.execute("ALTER TABLE rk_events DROP COLUMN event_key")
        conn.execute("UPDATE rk_schema SET version = 2 WHERE id = 1")
    conn.close()


def _layout(path: Path) -> tuple[int, list[str], list[str]]:
    conn = sqlite3.connect(path)
    (version,) = conn.execute("SELECT version FROM rk_schema").fetchone()
    columns = [r[1] for r in conn.execute("PRAGMA table_info(rk_events)")]
    indexes = [r[1] for r in conn.execute("PRAGMA index_list(rk_events)")]
    conn.close()
    return version, columns, indexes


def _version_2_database(path: Path) -> None:
    store = rk.SQLiteStore(path)
    with store.unit_of_work() as uow:
        for record in _records():
            uow.events.add(record)
        uow.events.redact(P, "c-1", rk.Click(event_id="c-1", at=START, visitor_id="erased"))
        uow.commit()
    store.close()
    _as_version_2(path)


KEY_SETS = [["bob"], ["v-bob", "erased"], ["order-b1", "order-b2", "bob"], ["erin", "v-erin"]]


def test_a_version_2_database_is_migrated_in_place(tmp_path: Path) -> None:
    """Opening a version-2 database adds and fills rk_events.event_key from the logged
    events, creates its index and records version 3; about() then answers as the whole log
    filtered by event_key does."""
    path = tmp_path / "v2.sqlite3"
    _version_2_database(path)
    version, columns, _ = _layout(path)
    assert version == 2
    assert "event_key" not in columns
    store = rk.SQLiteStore(path)
    version, columns, indexes = _layout(path)
    assert version == 3
    assert columns[-1] == "event_key"
    assert "rk_events_key" in indexes
    fallback = _Without(store, "about")
    for program in (P, "other"):
        for keys in KEY_SETS:
            with store.unit_of_work() as uow:
                got = uow.events.about(program, keys)
            with fallback.unit_of_work() as uow:
                want = events_about(uow, program, keys)  # type: ignore[arg-type]
            assert got == want, (program, keys)
            assert got, (program, keys)
    with store.unit_of_work() as uow:
        assert [r.event_id for _, r in uow.events.about(P, ["erased"])] == ["c-1"]
        assert uow.events.about(P, ["v-bob"]) == []  # redacted away before the migration
    store.close()
    rk.SQLiteStore(path).close()  # opening a version-3 database again changes nothing
    assert _layout(path)[0] == 3


def test_a_migration_that_cannot_read_an_event_changes_nothing(tmp_path: Path) -> None:
    """A logged event that cannot be decoded stops the migration with a CorruptRecordError
    naming the row, and the database stays at version 2, unchanged."""
    path = tmp_path / "v2.sqlite3"
    _version_2_database(path)
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("UPDATE rk_events SET event = '{\"$nope\": 1}' WHERE event_id = 'p-b2'")
    conn.close()
    before = _layout(path)
    with pytest.raises(rk.CorruptRecordError, match="rk_events row"):
        rk.SQLiteStore(path)
    assert _layout(path) == before


def test_a_fresh_store_writes_the_key_of_each_event(tmp_path: Path) -> None:
    """The column holds event_key of the event as stored, NULL for a click without a
    visitor; a redaction stores the new event's key."""
    path = tmp_path / "rk.sqlite3"
    store = rk.SQLiteStore(path)
    with store.unit_of_work() as uow:
        for record in _records():
            uow.events.add(record)
        uow.commit()
    with store.unit_of_work() as uow:
        uow.events.redact(P, "c-1", rk.Click(event_id="c-1", at=START, visitor_id="erased"))
        uow.commit()
    store.close()
    conn = sqlite3.connect(path)
    stored = dict(
        conn.execute("SELECT event_id, event_key FROM rk_events WHERE program_id = ?", (P,))
    )
    conn.close()
    want = {r.event_id: rk.event_key(r.event) for r in _records() if r.program_id == P}
    want["c-1"] = "erased"
    assert stored == want
    assert stored["c-3"] is None
    assert Decimal(len(stored)) == len(_events("CODE"))


def test_sqlite_about_without_json_each_binds_keys_in_chunks() -> None:
    """Where SQLite lacks json_each, about() binds the keys in chunks of ? marks and still
    returns each event once, in log order."""
    store = rk.SQLiteStore(":memory:")
    with store.unit_of_work() as uow:
        for n in range(900):
            event = rk.Click(event_id=f"c{n}", at=START, visitor_id=f"v{n % 450}")
            uow.events.add(
                EventRecord(P, event.event_id, "d", event, Outcome(event.event_id, "click"))
            )
        uow.commit()
    keys = [f"v{n}" for n in reversed(range(450))] + ["v1", "nobody"]
    with store.unit_of_work() as uow:
        joined = uow.events.about(P, keys)
    store._json_ids = False
    with store.unit_of_work() as uow:
        listed = uow.events.about(P, keys)
    assert listed == joined
    assert [n for n, _ in joined] == list(range(1, 901))
