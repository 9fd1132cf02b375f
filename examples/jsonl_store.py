"""A store of your own: records in memory, committed units of work in a JSON-lines file.

The example of "Write your own store" (docs/stores.md): ``JsonlStore`` implements the
``rk.Store`` protocol in a few hundred lines, written for clarity rather than speed:

- Every table is a dict in memory (``Table``). A unit of work buffers its writes next to the
  committed rows, so its reads see its own writes and a rollback just forgets them.
- ``commit()`` appends one line to the file: the new value of every row the unit wrote,
  table by table. Opening the store replays the lines in order to rebuild the tables.
- Units run one at a time (the store's lock), so a unit sees every committed write and a
  duplicate key is a conflict at the write: ``ConcurrencyError``.

It suits one process (threads included); several processes would need a file lock. Run it
with ``python examples/jsonl_store.py``: it runs a double-sided program, reopens the file in
a new store and prints the balances the reopened store holds.
"""

from __future__ import annotations

import functools
import itertools
import os
import tempfile
import threading
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Generic, Self, TypeVar

import attrs
from dateutil.relativedelta import relativedelta

import referralkit as rk

# The reversible JSON encoding that SQLiteStore uses for its records: every referralkit
# record to JSON text and back into an equal record.
from referralkit import codec

K = TypeVar("K")
V = TypeVar("V")
CounterKey = tuple[str, str, str]  # (program id, counter name, subject id)
# (delivered_at, attempts, last_error, next_attempt_at, dead_at): rk.OutboxStatus's fields
Status = tuple[datetime | None, int, str | None, datetime | None, datetime | None]
ZERO = Decimal(0)


class Table(Generic[K, V]):
    """One table: the committed rows, plus the writes of the unit of work that is open.

    Only one unit is open at a time, so a table has room for one unit's writes. Rows keep
    the order in which their keys were first written (that is, commit order).
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.rows: dict[K, V] = {}
        self.pending: dict[K, V] = {}

    def get(self, key: K) -> V | None:
        """The row as the open unit sees it (its own write first), or None."""
        return self.pending[key] if key in self.pending else self.rows.get(key)

    def __getitem__(self, key: K) -> V:
        return self.pending[key] if key in self.pending else self.rows[key]

    def __contains__(self, key: object) -> bool:
        return key in self.pending or key in self.rows

    def __len__(self) -> int:
        return len(self.rows) + sum(1 for key in self.pending if key not in self.rows)

    def items(self) -> Iterator[tuple[K, V]]:
        """Every row as the open unit sees it, in first-write order."""
        for key, value in self.rows.items():
            yield key, self.pending.get(key, value)
        yield from ((k, v) for k, v in self.pending.items() if k not in self.rows)


class Tables:
    """Every table of the store. The ``*_of`` tables are indexes, kept like the others."""

    def __init__(self) -> None:
        self.events: Table[tuple[str, str], rk.EventRecord] = Table("events")
        self.event_log: Table[int, tuple[str, str]] = Table("event_log")  # position -> key
        self.programs: Table[tuple[str, int], rk.ProgramRecord] = Table("programs")
        self.participants: Table[tuple[str, str], rk.ParticipantRecord] = Table("participants")
        self.codes: Table[tuple[str, str], rk.CodeRecord] = Table("codes")
        self.code_of: Table[tuple[str, str], str] = Table("code_of")
        self.personal_data: Table[tuple[str, str], str] = Table("personal_data")
        self.referrals: Table[str, rk.Referral] = Table("referrals")
        self.referral_of: Table[tuple[str, str], str] = Table("referral_of")
        self.orders: Table[tuple[str, str], rk.OrderRecord] = Table("orders")
        self.refunds: Table[tuple[str, str], rk.RefundRecord] = Table("refunds")
        self.chargebacks: Table[tuple[str, str], rk.ChargebackRecord] = Table("chargebacks")
        self.rewards: Table[str, rk.Reward] = Table("rewards")
        self.rewards_of: Table[tuple[str, str], tuple[str, ...]] = Table("rewards_of")
        self.rewards_of_order: Table[tuple[str, str], tuple[str, ...]] = Table("rewards_of_order")
        self.entries: Table[str, tuple[rk.Entry, ...]] = Table("entries")
        self.entry_ids: Table[str, str] = Table("entry_ids")  # entry id -> reward id
        self.counters: Table[CounterKey, Decimal] = Table("counters")
        self.outbox: Table[str, rk.Notification] = Table("outbox")
        self.outbox_status: Table[str, Status] = Table("outbox_status")
        self.payouts: Table[str, rk.Payout] = Table("payouts")
        # A purged touch is kept as None (a tombstone), so the file replays the deletion.
        self.touches: Table[tuple[str, str], rk.TouchRecord | None] = Table("touches")
        self.touches_of_visitor: Table[tuple[str, str], tuple[str, ...]] = Table("touches_of_v")
        self.touches_of_participant: Table[tuple[str, str], tuple[str, ...]] = Table("touches_of_p")
        self.referrals_of: Table[tuple[str, str], tuple[str, ...]] = Table("referrals_of")

    def all(self) -> list[Table[Any, Any]]:
        """Every table."""
        return [table for table in vars(self).values() if isinstance(table, Table)]


class JsonlStore:
    """A ``rk.Store`` in memory, made durable by a JSON-lines file.

    Args:
        path: The file. It is created on the first commit; an existing file is replayed.

    Raises:
        CorruptRecordError: a line of the file cannot be read back.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._tables = Tables()
        self._lock = threading.RLock()
        self._busy = False  # a unit of work is open
        self._replay()

    def unit_of_work(self) -> JsonlUnitOfWork:
        """Begin a unit of work (use it in a ``with`` block)."""
        return JsonlUnitOfWork(self)

    def dump(self) -> dict[str, list[Any]]:
        """Every committed record, by table, in key order (the shapes of InMemoryStore's)."""
        t = self._tables
        with self._lock:

            def rows(table: Table[Any, Any]) -> list[Any]:
                return [table.rows[key] for key in sorted(table.rows)]

            return {
                "events": rows(t.events),
                "programs": rows(t.programs),
                "participants": rows(t.participants),
                "codes": rows(t.codes),
                "personal_data": sorted(t.personal_data.rows.items()),
                "referrals": rows(t.referrals),
                "orders": rows(t.orders),
                "refunds": rows(t.refunds),
                "chargebacks": rows(t.chargebacks),
                "rewards": rows(t.rewards),
                "entries": [entry for entries in rows(t.entries) for entry in entries],
                "counters": [(k, v) for k, v in sorted(t.counters.rows.items()) if v],
                "outbox": rows(t.outbox),
                "outbox_status": [
                    (k, rk.OutboxStatus(*status))
                    for k, status in sorted(t.outbox_status.rows.items())
                ],
                "payouts": rows(t.payouts),
                "touches": [touch for touch in rows(t.touches) if touch is not None],
            }

    # -- the file -------------------------------------------------------------------------
    def _replay(self) -> None:
        """Rebuild the tables from the file, one committed unit of work per line."""
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        complete, _, torn = data.rpartition(b"\n")
        if torn:  # a crash during a commit: that unit never committed, so drop its line
            os.truncate(self.path, len(data) - len(torn))
        tables = {table.name: table for table in self._tables.all()}
        for number, line in enumerate(complete.splitlines(), start=1):
            try:
                unit: dict[str, list[tuple[Any, Any]]] = codec.loads(line.decode("utf-8"))
                for name, rows in unit.items():
                    tables[name].rows.update(rows)
            except (ValueError, KeyError) as exc:  # CodecError is a ValueError
                raise rk.CorruptRecordError(f"{self.path}, line {number}: {exc}") from exc

    def _append(self, writes: dict[str, list[tuple[Any, Any]]]) -> None:
        """Append one committed unit's writes to the file, durably."""
        try:
            with self.path.open("a", encoding="utf-8") as file:
                file.write(codec.dumps(writes) + "\n")
                file.flush()
                os.fsync(file.fileno())
        except OSError as exc:
            raise rk.StoreUnavailableError(f"cannot write {self.path}: {exc}") from exc


class JsonlUnitOfWork:
    """One unit of work: holds the store's lock from ``__enter__`` to ``__exit__``."""

    def __init__(self, store: JsonlStore) -> None:
        self._store = store
        self._t = store._tables
        self._open = False
        self._failed = False  # a conflict rolled the unit back: commit() must refuse
        self.events = Events(self)
        self.programs = Programs(self)
        self.participants = Participants(self)
        self.referrals = Referrals(self)
        self.orders = Orders(self)
        self.ledger = Ledger(self)
        self.counters = Counters(self)
        self.outbox = Outbox(self)
        self.payouts = Payouts(self)
        self.touches = Touches(self)

    def __enter__(self) -> Self:
        self._store._lock.acquire()
        if self._store._busy:  # the lock is reentrant: this thread already has a unit open
            self._store._lock.release()
            raise rk.StoreError("units of work cannot nest: commit or leave the first one")
        self._store._busy = self._open = True
        self._failed = False
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            self.rollback()  # whatever was written since the last commit()
        finally:
            self._store._busy = self._open = False
            self._store._lock.release()

    def commit(self) -> None:
        """Append the unit's writes to the file as one line, then make them visible."""
        self._require_open()
        if self._failed:
            raise rk.StoreError("this unit of work was rolled back after a conflict")
        tables = self._t.all()
        writes = {t.name: list(t.pending.items()) for t in tables if t.pending}
        if writes:
            self._store._append(writes)  # the commit point: the line is on disk
        for table in tables:
            table.rows.update(table.pending)
            table.pending.clear()

    def rollback(self) -> None:
        """Forget every write since the last commit."""
        for table in self._t.all():
            table.pending.clear()

    # -- helpers for the repositories -----------------------------------------------------
    def _require_open(self) -> None:
        if not self._open:
            raise rk.StoreError("unit of work used outside its 'with' block")

    def put(self, table: Table[K, V], key: K, value: V) -> None:
        """Insert or replace a row."""
        self._require_open()
        table.pending[key] = value

    def append_to(self, table: Table[K, tuple[V, ...]], key: K, item: V) -> None:
        """Append ``item`` to the tuple a row holds (an index, or a reward's entries)."""
        self.put(table, key, (*(table.get(key) or ()), item))

    def insert(self, table: Table[K, V], key: K, value: V) -> None:
        """Insert a row whose key must be new: a known key is a conflict."""
        if key in table:
            raise self.fail(f"{table.name} {key!r} already exists")
        self.put(table, key, value)

    def fail(self, message: str, error: type[rk.StoreError] = rk.ConcurrencyError) -> rk.StoreError:
        """Roll the whole unit back, as a database would, and return the error to raise."""
        self.rollback()
        self._failed = True
        return error(message)


class Repository:
    """Base of the repositories: each reads and writes the tables through its unit.

    Each repository implements one protocol of ``referralkit`` (``rk.EventLog``, ...); the
    protocols' docstrings say what each method promises, so the methods here have none.
    """

    def __init__(self, uow: JsonlUnitOfWork) -> None:
        self.uow = uow
        self.t = uow._t


class Events(Repository):
    """The event log (``rk.EventLog``)."""

    def get(self, program_id: str, event_id: str) -> rk.EventRecord | None:
        return self.t.events.get((program_id, event_id))

    def add(self, record: rk.EventRecord) -> None:
        key = (record.program_id, record.event_id)
        self.uow.insert(self.t.events, key, record)
        self.uow.put(self.t.event_log, len(self.t.event_log) + 1, key)

    def redact(self, program_id: str, event_id: str, event: rk.Event) -> None:
        old = self.t.events.get((program_id, event_id))
        if old is None:
            raise rk.StoreError(f"unknown event {(program_id, event_id)!r}")
        self.uow.put(self.t.events, (program_id, event_id), attrs.evolve(old, event=event))

    def since(self, program_id: str, after: int, limit: int) -> list[tuple[int, rk.EventRecord]]:
        found: list[tuple[int, rk.EventRecord]] = []
        position = max(after, 0) + 1
        while len(found) < limit and position in self.t.event_log:
            key = self.t.event_log[position]
            if key[0] == program_id:
                found.append((position, self.t.events[key]))
            position += 1
        return found


class Programs(Repository):
    """Published program versions (``rk.Programs``)."""

    def get(self, program_id: str, version: int) -> rk.ProgramRecord | None:
        return self.t.programs.get((program_id, version))

    def add(self, record: rk.ProgramRecord) -> None:
        self.uow.insert(self.t.programs, (record.program_id, record.version), record)

    def versions(self, program_id: str) -> list[rk.ProgramRecord]:
        mine = [r for (pid, _), r in self.t.programs.items() if pid == program_id]
        return sorted(mine, key=lambda r: r.version)


class Participants(Repository):
    """Participants, codes and emails (``rk.Participants``)."""

    def get(self, program_id: str, participant_id: str) -> rk.ParticipantRecord | None:
        return self.t.participants.get((program_id, participant_id))

    def put(self, record: rk.ParticipantRecord) -> None:
        self.uow.put(self.t.participants, (record.program_id, record.participant_id), record)

    def code_owner(self, program_id: str, code: str) -> rk.CodeRecord | None:
        return self.t.codes.get((program_id, code))

    def code_of(self, program_id: str, participant_id: str) -> rk.CodeRecord | None:
        code = self.t.code_of.get((program_id, participant_id))
        return None if code is None else self.t.codes[(program_id, code)]

    def add_code(self, record: rk.CodeRecord) -> None:
        owner = (record.program_id, record.participant_id)
        if owner in self.t.code_of:
            raise self.uow.fail(f"participant {owner!r} already has a code")
        self.uow.insert(self.t.codes, (record.program_id, record.code), record)
        self.uow.put(self.t.code_of, owner, record.code)

    def email_of(self, program_id: str, participant_id: str) -> str | None:
        return self.t.personal_data.get((program_id, participant_id))

    def set_email(self, program_id: str, participant_id: str, email: str) -> None:
        self.uow.put(self.t.personal_data, (program_id, participant_id), email)


class Referrals(Repository):
    """Referrals, one per referee (``rk.Referrals``)."""

    def by_referee(self, program_id: str, referee_id: str) -> rk.Referral | None:
        referral_id = self.t.referral_of.get((program_id, referee_id))
        return None if referral_id is None else self.t.referrals[referral_id]

    def get(self, referral_id: str) -> rk.Referral | None:
        return self.t.referrals.get(referral_id)

    def add(self, referral: rk.Referral) -> None:
        referee = (referral.program_id, referral.referee_id)
        self.uow.insert(self.t.referral_of, referee, referral.referral_id)
        self.uow.insert(self.t.referrals, referral.referral_id, referral)
        referrer = (referral.program_id, referral.referrer_id)
        self.uow.append_to(self.t.referrals_of, referrer, referral.referral_id)

    def by_referrer(self, program_id: str, referrer_id: str) -> list[rk.Referral]:
        ids = self.t.referrals_of.get((program_id, referrer_id)) or ()
        return [self.t.referrals[referral_id] for referral_id in sorted(ids)]

    def update(self, referral: rk.Referral) -> None:
        old = self.t.referrals.get(referral.referral_id)
        if old is None:
            raise rk.StoreError(f"unknown referral {referral.referral_id!r}")
        new = attrs.evolve(
            old,
            referrer_id=referral.referrer_id,
            code=referral.code,
            status=referral.status,
            explanation=referral.explanation,
        )
        if new.referrer_id != old.referrer_id:  # move it in the by-referrer index
            before = (old.program_id, old.referrer_id)
            kept = tuple(i for i in self.t.referrals_of.get(before) or () if i != old.referral_id)
            self.uow.put(self.t.referrals_of, before, kept)
            after = (new.program_id, new.referrer_id)
            self.uow.append_to(self.t.referrals_of, after, new.referral_id)
        self.uow.put(self.t.referrals, referral.referral_id, new)


class Touches(Repository):
    """Clicks and typed codes of would-be referees (``rk.Touches``)."""

    def add(self, record: rk.TouchRecord) -> None:
        key = (record.program_id, record.touch_id)
        if self.t.touches.get(key) is not None:
            raise self.uow.fail(f"touch {key!r} already exists")
        self.uow.put(self.t.touches, key, record)
        if record.visitor_id is not None:
            index = (record.program_id, record.visitor_id)
            self.uow.append_to(self.t.touches_of_visitor, index, record.touch_id)
        if record.participant_id is not None:
            index = (record.program_id, record.participant_id)
            self.uow.append_to(self.t.touches_of_participant, index, record.touch_id)

    def _found(self, program_id: str, ids: Iterable[str]) -> list[rk.TouchRecord]:
        rows = [self.t.touches.get((program_id, touch_id)) for touch_id in dict.fromkeys(ids)]
        return sorted((r for r in rows if r is not None), key=lambda r: (r.at, r.touch_id))

    def of_visitor(self, program_id: str, visitor_id: str) -> list[rk.TouchRecord]:
        return self._found(
            program_id, self.t.touches_of_visitor.get((program_id, visitor_id)) or ()
        )

    def of_participant(self, program_id: str, participant_id: str) -> list[rk.TouchRecord]:
        ids = self.t.touches_of_participant.get((program_id, participant_id)) or ()
        return self._found(program_id, ids)

    def attach(self, program_id: str, visitor_id: str, participant_id: str) -> None:
        for touch in self.of_visitor(program_id, visitor_id):
            if touch.participant_id is None:
                attached = attrs.evolve(touch, participant_id=participant_id)
                self.uow.put(self.t.touches, (program_id, touch.touch_id), attached)
                index = (program_id, participant_id)
                self.uow.append_to(self.t.touches_of_participant, index, touch.touch_id)

    def purge(self, program_id: str, before: datetime) -> int:
        # A scan: retention runs now and then, not once per event.
        old = [
            key
            for key, touch in self.t.touches.items()
            if touch is not None and key[0] == program_id and touch.at < before
        ]
        for key in old:
            self.uow.put(self.t.touches, key, None)
        return len(old)

    def forget(self, program_id: str, participant_id: str) -> int:
        mine = self.of_participant(program_id, participant_id)
        for touch in mine:
            self.uow.put(self.t.touches, (program_id, touch.touch_id), None)
        return len(mine)


class Orders(Repository):
    """Orders, refunds and chargebacks (``rk.Orders``)."""

    def get(self, program_id: str, order_id: str) -> rk.OrderRecord | None:
        return self.t.orders.get((program_id, order_id))

    def add(self, record: rk.OrderRecord) -> None:
        self.uow.insert(self.t.orders, (record.program_id, record.order_id), record)

    def update(self, record: rk.OrderRecord) -> None:
        key = (record.program_id, record.order_id)
        old = self.t.orders.get(key)
        if old is None:
            raise rk.StoreError(f"unknown order {key!r}")
        new = attrs.evolve(old, referral_id=record.referral_id, converted=record.converted)
        self.uow.put(self.t.orders, key, new)

    def refund(self, program_id: str, refund_id: str) -> rk.RefundRecord | None:
        return self.t.refunds.get((program_id, refund_id))

    def add_refund(self, record: rk.RefundRecord) -> None:
        self.uow.insert(self.t.refunds, (record.program_id, record.refund_id), record)

    def chargeback(self, program_id: str, chargeback_id: str) -> rk.ChargebackRecord | None:
        return self.t.chargebacks.get((program_id, chargeback_id))

    def add_chargeback(self, record: rk.ChargebackRecord) -> None:
        self.uow.insert(self.t.chargebacks, (record.program_id, record.chargeback_id), record)


class Ledger(Repository):
    """Rewards and their entries (``rk.Ledger``)."""

    def add_reward(self, reward: rk.Reward, entry: rk.Entry) -> None:
        pid, rid = reward.program_id, reward.reward_id
        self.uow.insert(self.t.rewards, rid, reward)
        self.uow.append_to(self.t.rewards_of, (pid, reward.participant_id), rid)
        if reward.order_id is not None:
            self.uow.append_to(self.t.rewards_of_order, (pid, reward.order_id), rid)
        self.append([entry])

    def append(self, entries: Sequence[rk.Entry]) -> None:
        for entry in entries:
            if entry.reward_id not in self.t.rewards:
                message = f"entry {entry.entry_id!r} names unknown reward {entry.reward_id!r}"
                raise self.uow.fail(message, rk.StoreError)
            self.uow.insert(self.t.entry_ids, entry.entry_id, entry.reward_id)
            self.uow.append_to(self.t.entries, entry.reward_id, entry)

    def rewards(
        self,
        program_id: str,
        *,
        participant_id: str | None = None,
        order_id: str | None = None,
    ) -> list[rk.Reward]:
        if participant_id is not None and order_id is None:
            ids = self.t.rewards_of.get((program_id, participant_id))
        elif order_id is not None and participant_id is None:
            ids = self.t.rewards_of_order.get((program_id, order_id))
        else:
            raise rk.StoreError("give exactly one of participant_id, order_id")
        return [self.t.rewards[reward_id] for reward_id in ids or ()]

    def entries(self, reward_ids: Iterable[str]) -> dict[str, list[rk.Entry]]:
        return {rid: list(self.t.entries.get(rid) or ()) for rid in reward_ids}

    def in_state(
        self, program_id: str, state: rk.RewardState, *, due_by: datetime | None, limit: int
    ) -> list[rk.Reward]:
        # A scan: settle() calls this once per batch, not once per event.
        found = [
            reward
            for reward_id, reward in self.t.rewards.items()
            if reward.program_id == program_id
            and self.t.entries[reward_id][-1].state_after is state
            and (due_by is None or reward.payable_at <= due_by)
        ]
        return sorted(found, key=lambda r: (r.payable_at, r.reward_id))[: max(limit, 0)]


class Counters(Repository):
    """Exact counters (``rk.Counters``)."""

    def get(self, keys: Iterable[CounterKey]) -> dict[CounterKey, Decimal]:
        return {key: self.t.counters.get(key) or ZERO for key in keys}

    def add(self, key: CounterKey, delta: Decimal) -> None:
        if delta:
            self.uow.put(self.t.counters, key, (self.t.counters.get(key) or ZERO) + delta)


class Outbox(Repository):
    """Notifications and their delivery status (``rk.Outbox``)."""

    def add(self, notifications: Sequence[rk.Notification]) -> None:
        for note in notifications:
            self.uow.insert(self.t.outbox, note.notification_id, note)
            self.uow.put(self.t.outbox_status, note.notification_id, (None, 0, None, None, None))

    def _open(self) -> Iterator[tuple[int, str, Status]]:
        """(position, id, status) of every pending notification: neither delivered nor dead.
        A scan, which is fine for a small store; SQL stores use an index."""
        for position, (nid, status) in enumerate(self.t.outbox_status.items()):
            if status[0] is None and status[4] is None:
                yield position, nid, status

    def pending(self, limit: int) -> list[rk.Notification]:
        waiting = (self.t.outbox[nid] for _, nid, _ in self._open())
        return list(itertools.islice(waiting, max(limit, 0)))

    def due(self, at: datetime, limit: int) -> list[tuple[rk.Notification, int]]:
        retries = sorted(
            (status[3], position, nid)
            for position, nid, status in self._open()
            if status[3] is not None and status[3] <= at
        )
        fresh = [nid for _, nid, status in self._open() if status[3] is None]
        ids = [nid for _, _, nid in retries] + fresh
        return [(self.t.outbox[nid], self.t.outbox_status[nid][1]) for nid in ids[: max(limit, 0)]]

    def mark_delivered(self, notification_id: str, at: datetime) -> None:
        status = self.t.outbox_status.get(notification_id)
        if status is not None and status[0] is None:
            self.uow.put(
                self.t.outbox_status, notification_id, (at, status[1] + 1, status[2], None, None)
            )

    def mark_failed(
        self, notification_id: str, at: datetime, error: str, retry_at: datetime | None = None
    ) -> None:
        status = self.t.outbox_status.get(notification_id)
        if status is not None and status[0] is None and status[4] is None:
            retry = at if retry_at is None else retry_at
            self.uow.put(
                self.t.outbox_status, notification_id, (None, status[1] + 1, error, retry, None)
            )

    def mark_dead(self, notification_id: str, at: datetime, error: str) -> None:
        status = self.t.outbox_status.get(notification_id)
        if status is not None and status[0] is None and status[4] is None:
            self.uow.put(
                self.t.outbox_status, notification_id, (None, status[1] + 1, error, None, at)
            )

    def dead(self, limit: int) -> list[rk.DeadLetter]:
        letters = sorted(
            (status[4], position, nid, status)
            for position, (nid, status) in enumerate(self.t.outbox_status.items())
            if status[4] is not None
        )
        return [
            rk.DeadLetter(self.t.outbox[nid], status[1], status[2], dead_at)
            for dead_at, _, nid, status in letters[: max(limit, 0)]
        ]

    def revive(self, notification_ids: Sequence[str]) -> int:
        revived = 0
        for nid in dict.fromkeys(notification_ids):
            status = self.t.outbox_status.get(nid)
            if status is not None and status[4] is not None:
                self.uow.put(self.t.outbox_status, nid, (None, 0, status[2], None, None))
                revived += 1
        return revived


# -- the demo -----------------------------------------------------------------------------
class Payouts(Repository):
    """Payout records by id."""

    def add(self, payout: rk.Payout) -> None:
        self.uow.insert(self.t.payouts, payout.payout_id, payout)

    def get(self, program_id: str, payout_id: str) -> rk.Payout | None:
        found = self.t.payouts.get(payout_id)
        return found if found is not None and found.program_id == program_id else None

    def update(self, payout: rk.Payout) -> None:
        old = self.t.payouts.get(payout.payout_id)
        if old is None:
            raise rk.StoreError(f"payout {payout.payout_id!r} is not recorded")
        new = attrs.evolve(
            old,
            status=payout.status,
            attempts=payout.attempts,
            error=payout.error,
            updated_at=payout.updated_at,
        )
        self.uow.put(self.t.payouts, payout.payout_id, new)

    def open(self, program_id: str, participant_id: str | None, limit: int) -> list[rk.Payout]:
        waiting = (rk.PayoutStatus.PENDING, rk.PayoutStatus.FAILED)
        found = [
            p
            for _, p in self.t.payouts.items()
            if p.program_id == program_id
            and p.status in waiting
            and participant_id in (None, p.participant_id)
        ]
        return sorted(found, key=lambda p: (p.created_at, p.payout_id))[: max(limit, 0)]


def main() -> None:
    """Run a double-sided program on a JsonlStore, reopen the file, print the balances."""
    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    day = timedelta(days=1)
    usd = functools.partial(rk.Money, currency="USD")
    program = rk.Program(
        id="friends",
        effective_at=start,
        currency="USD",
        policies=[rk.DoubleSided(referrer=rk.Cash(usd("20.00")), referee=rk.Credit(usd("10.00")))],
        hold=relativedelta(days=30),
    )
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "referrals.jsonl"
        engine = rk.Engine(program, JsonlStore(path), clock=rk.ManualClock(start))
        code = engine.issue_code("alice")
        for event in (
            rk.Signup(event_id="e-1", participant_id="bob", code=code, at=start),
            rk.Purchase(
                event_id="e-2",
                participant_id="bob",
                order_id="o-1",
                amount=usd("80"),
                at=start + day,
            ),
        ):
            print(f"{event.event_id}: {', '.join(engine.handle(event).reasons())}")
        print(f"settle: {engine.settle(now=start + 31 * day)} rewards approved")
        refund = rk.Refund(
            event_id="e-3", refund_id="r-1", order_id="o-1", amount=usd("20"), at=start + 32 * day
        )
        print(f"e-3: {', '.join(engine.handle(refund).reasons())}")

        print(f"\n{path.name}, one committed unit of work per line; the tables each one wrote:")
        for number, line in enumerate(path.read_text("utf-8").splitlines(), start=1):
            print(f"  {number}: {', '.join(codec.loads(line))}")

        reopened = JsonlStore(path)  # a new store, as after a restart: it replays the file
        assert reopened.dump() == engine.store.dump(), "the reopened store differs"
        after_restart = rk.Engine(program, reopened)
        print("\nBalances in the reopened store (pending / available / lifetime):")
        for who in ("alice", "bob"):
            for b in after_restart.balance(who):
                print(f"  {who:<6} {b.unit!s:<11} {b.pending} / {b.available} / {b.lifetime}")


if __name__ == "__main__":
    main()
