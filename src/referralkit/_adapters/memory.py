"""The reference store: everything in memory, serializable units of work, an undo log."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from types import TracebackType
from typing import Any, Self, TypeVar

import attrs

from referralkit._adapters._lazy import _lazy
from referralkit._errors import ConcurrencyError, StoreError
from referralkit._ports import CounterKey, event_key
from referralkit._values.events import Event
from referralkit._values.records import (
    ChargebackRecord,
    CodeRecord,
    DeadLetter,
    Entry,
    EventRecord,
    Notification,
    OrderRecord,
    OutboxStatus,
    ParticipantRecord,
    Payout,
    PayoutStatus,
    ProgramRecord,
    Referral,
    RefundRecord,
    Reward,
    RewardState,
    TouchRecord,
)

__all__ = ["InMemoryStore", "OutboxStatus"]

K = TypeVar("K")
V = TypeVar("V")
_MISSING: Any = object()
_POP: Any = object()
_ZERO = Decimal(0)


class _Tables:
    def __init__(self) -> None:
        self.events: dict[tuple[str, str], EventRecord] = {}
        self.event_log: list[tuple[str, str]] = []  # keys in commit order
        # (program id, event_key of the event) -> its log positions, ascending
        self.events_by_key: dict[tuple[str, str], list[int]] = {}
        self.programs: dict[tuple[str, int], ProgramRecord] = {}
        self.participants: dict[tuple[str, str], ParticipantRecord] = {}
        self.codes: dict[tuple[str, str], CodeRecord] = {}
        self.code_of: dict[tuple[str, str], CodeRecord] = {}
        self.emails: dict[tuple[str, str], str] = {}
        self.referrals: dict[str, Referral] = {}
        self.referral_of: dict[tuple[str, str], str] = {}
        self.orders: dict[tuple[str, str], OrderRecord] = {}
        self.refunds: dict[tuple[str, str], RefundRecord] = {}
        self.chargebacks: dict[tuple[str, str], ChargebackRecord] = {}
        self.rewards: dict[str, Reward] = {}
        self.rewards_of: dict[tuple[str, str], list[str]] = {}
        self.rewards_of_order: dict[tuple[str, str], list[str]] = {}
        self.entries: dict[str, list[Entry]] = {}
        self.entry_ids: dict[str, None] = {}
        self.by_state: dict[tuple[str, RewardState], dict[str, None]] = {}
        self.counters: dict[CounterKey, Decimal] = {}
        self.outbox: dict[str, Notification] = {}
        self.outbox_status: dict[str, OutboxStatus] = {}
        self.payouts: dict[str, Payout] = {}
        self.outbox_seq: dict[str, int] = {}  # notification id -> position added
        self.outbox_open: dict[str, None] = {}  # pending ids (neither delivered nor dead)
        self.outbox_dead: dict[str, None] = {}  # dead-letter ids
        self.touches: dict[tuple[str, str], TouchRecord] = {}
        self.touches_of_visitor: dict[tuple[str, str], dict[str, None]] = {}
        self.touches_of_participant: dict[tuple[str, str], dict[str, None]] = {}
        self.referrals_of: dict[tuple[str, str], dict[str, None]] = {}


class _MemoryUnitOfWork:
    """One serializable unit of work; holds the store's lock from enter to exit."""

    def __init__(self, store: InMemoryStore) -> None:
        self._store = store
        self._t = store._tables
        self._undo: list[tuple[Any, Any, Any]] = []
        self._open = False
        self._failed = False

    # Repositories are made on first use: most events touch only a few of them.
    @property
    def events(self) -> _MemoryUnitOfWork:
        return self

    @_lazy
    def programs(self) -> _Programs:
        return _Programs(self)

    @_lazy
    def participants(self) -> _Participants:
        return _Participants(self)

    @_lazy
    def referrals(self) -> _Referrals:
        return _Referrals(self)

    @_lazy
    def orders(self) -> _Orders:
        return _Orders(self)

    @_lazy
    def ledger(self) -> _Ledger:
        return _Ledger(self)

    @_lazy
    def counters(self) -> _Counters:
        return _Counters(self)

    @_lazy
    def outbox(self) -> _Outbox:
        return _Outbox(self)

    @_lazy
    def payouts(self) -> _Payouts:
        return _Payouts(self)

    @_lazy
    def touches(self) -> _Touches:
        return _Touches(self)

    # -- transaction -------------------------------------------------------------------
    def __enter__(self) -> Self:
        if self._open:
            raise StoreError("this unit of work is already open")
        self._store._lock.acquire()
        self._open = True
        self._undo.clear()
        self._failed = False
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.rollback()  # whatever was written since the last commit()
        finally:
            self._open = False
            self._store._lock.release()

    def commit(self) -> None:
        self._require_open()
        if self._failed:
            raise StoreError("this unit of work was rolled back after a conflict")
        self._undo.clear()

    def rollback(self) -> None:
        undo = self._undo
        while undo:
            table, key, old = undo.pop()
            if old is _POP:
                table.pop()
            elif old is _MISSING:
                del table[key]
            else:
                table[key] = old

    def _require_open(self) -> None:
        if not self._open:
            raise StoreError("unit of work used outside its 'with' block")

    # -- undoable primitives: the undo log holds (container, key, previous value) -------
    def _set(self, table: dict[K, V], key: K, value: V) -> None:
        if not self._open:
            self._require_open()
        self._undo.append((table, key, table.get(key, _MISSING)))
        table[key] = value

    def _insert(self, table: dict[K, V], key: K, value: V, what: str) -> None:
        if key in table:
            raise self._conflict(f"{what} {key!r} already exists")
        self._set(table, key, value)

    def _conflict(self, message: str) -> ConcurrencyError:
        """Roll the whole unit back (as a database would) and say why."""
        self.rollback()
        self._failed = True
        return ConcurrencyError(message)

    def _append(self, table: dict[K, list[V]], key: K, value: V) -> None:
        items = table.get(key)
        if items is None:
            self._set(table, key, [value])
        else:
            if not self._open:
                self._require_open()
            items.append(value)
            self._undo.append((items, None, _POP))

    def _index(self, table: dict[K, dict[str, None]], key: K, item: str) -> None:
        bucket = table.get(key)
        if bucket is None:
            bucket = {}
            self._set(table, key, bucket)
        if item not in bucket:
            self._set(bucket, item, None)

    def _discard(self, table: dict[K, V], key: K) -> None:
        if not self._open:
            self._require_open()
        if key in table:
            self._undo.append((table, key, table.pop(key)))

    # -- event log (the unit is its own EventLog) --------------------------------------
    def get(self, program_id: str, event_id: str) -> EventRecord | None:
        return self._t.events.get((program_id, event_id))

    def add(self, record: EventRecord) -> None:
        key = (record.program_id, record.event_id)
        self._insert(self._t.events, key, record, "event")
        log = self._t.event_log
        log.append(key)
        self._undo.append((log, None, _POP))
        indexed = event_key(record.event)
        if indexed is not None:
            self._append(self._t.events_by_key, (record.program_id, indexed), len(log))

    def redact(self, program_id: str, event_id: str, event: Event) -> None:
        key = (program_id, event_id)
        old = self._t.events.get(key)
        if old is None:
            raise StoreError(f"unknown event {key!r}")
        self._set(self._t.events, key, attrs.evolve(old, event=event))
        was, now = event_key(old.event), event_key(event)
        if was != now:  # the event is found by its new key only (lists copied: undoable)
            index, log = self._t.events_by_key, self._t.event_log
            position = 0
            if was is not None:
                positions = index[(program_id, was)]
                position = next(p for p in positions if log[p - 1] == key)
                self._set(index, (program_id, was), [p for p in positions if p != position])
            else:
                position = log.index(key) + 1
            if now is not None:
                moved = sorted([*index.get((program_id, now), ()), position])
                self._set(index, (program_id, now), moved)

    def about(self, program_id: str, keys: Sequence[str]) -> list[tuple[int, EventRecord]]:
        index = self._t.events_by_key
        positions: set[int] = set()
        for one in keys:
            positions.update(index.get((program_id, one), ()))
        log, events = self._t.event_log, self._t.events
        return [(p, events[log[p - 1]]) for p in sorted(positions)]

    def since(self, program_id: str, after: int, limit: int) -> list[tuple[int, EventRecord]]:
        out: list[tuple[int, EventRecord]] = []
        log = self._t.event_log
        for position in range(max(after, 0) + 1, len(log) + 1):
            if len(out) >= limit:
                break
            key = log[position - 1]
            if key[0] == program_id:
                out.append((position, self._t.events[key]))
        return out


class _Repo:
    def __init__(self, uow: _MemoryUnitOfWork) -> None:
        self._u = uow
        self._t = uow._t


class _Programs(_Repo):
    def get(self, program_id: str, version: int) -> ProgramRecord | None:
        return self._t.programs.get((program_id, version))

    def add(self, record: ProgramRecord) -> None:
        self._u._insert(self._t.programs, (record.program_id, record.version), record, "program")

    def versions(self, program_id: str) -> list[ProgramRecord]:
        return sorted(
            (r for (p, _), r in self._t.programs.items() if p == program_id),
            key=lambda r: r.version,
        )


class _Participants(_Repo):
    def get(self, program_id: str, participant_id: str) -> ParticipantRecord | None:
        return self._t.participants.get((program_id, participant_id))

    def put(self, record: ParticipantRecord) -> None:
        self._u._set(self._t.participants, (record.program_id, record.participant_id), record)

    def code_owner(self, program_id: str, code: str) -> CodeRecord | None:
        return self._t.codes.get((program_id, code))

    def code_of(self, program_id: str, participant_id: str) -> CodeRecord | None:
        return self._t.code_of.get((program_id, participant_id))

    def add_code(self, record: CodeRecord) -> None:
        key = (record.program_id, record.participant_id)
        if key in self._t.code_of:
            raise self._u._conflict(f"participant {key!r} already has a code")
        self._u._insert(self._t.codes, (record.program_id, record.code), record, "code")
        self._u._set(self._t.code_of, key, record)

    def email_of(self, program_id: str, participant_id: str) -> str | None:
        return self._t.emails.get((program_id, participant_id))

    def set_email(self, program_id: str, participant_id: str, email: str) -> None:
        self._u._set(self._t.emails, (program_id, participant_id), email)


class _Referrals(_Repo):
    def by_referee(self, program_id: str, referee_id: str) -> Referral | None:
        rid = self._t.referral_of.get((program_id, referee_id))
        return None if rid is None else self._t.referrals[rid]

    def get(self, referral_id: str) -> Referral | None:
        return self._t.referrals.get(referral_id)

    def add(self, referral: Referral) -> None:
        key = (referral.program_id, referral.referee_id)
        self._u._insert(self._t.referral_of, key, referral.referral_id, "referee")
        self._u._insert(self._t.referrals, referral.referral_id, referral, "referral")
        self._u._index(
            self._t.referrals_of, (referral.program_id, referral.referrer_id), referral.referral_id
        )

    def by_referrer(self, program_id: str, referrer_id: str) -> list[Referral]:
        ids = self._t.referrals_of.get((program_id, referrer_id), {})
        return [self._t.referrals[i] for i in sorted(ids)]

    def update(self, referral: Referral) -> None:
        old = self._t.referrals.get(referral.referral_id)
        if old is None:
            raise StoreError(f"unknown referral {referral.referral_id!r}")
        new = attrs.evolve(
            old,
            referrer_id=referral.referrer_id,
            code=referral.code,
            status=referral.status,
            explanation=referral.explanation,
        )
        if new.referrer_id != old.referrer_id:
            bucket = self._t.referrals_of.get((old.program_id, old.referrer_id))
            if bucket is not None:
                self._u._discard(bucket, old.referral_id)
            self._u._index(self._t.referrals_of, (new.program_id, new.referrer_id), new.referral_id)
        self._u._set(self._t.referrals, referral.referral_id, new)


def _touch_order(t: _Tables, program_id: str, ids: Iterable[str]) -> list[TouchRecord]:
    found = [t.touches[(program_id, i)] for i in ids]
    return sorted(found, key=lambda r: (r.at, r.touch_id))


class _Touches(_Repo):
    def add(self, record: TouchRecord) -> None:
        pid = record.program_id
        self._u._insert(self._t.touches, (pid, record.touch_id), record, "touch")
        if record.visitor_id is not None:
            self._u._index(self._t.touches_of_visitor, (pid, record.visitor_id), record.touch_id)
        if record.participant_id is not None:
            self._u._index(
                self._t.touches_of_participant, (pid, record.participant_id), record.touch_id
            )

    def of_visitor(self, program_id: str, visitor_id: str) -> list[TouchRecord]:
        ids = self._t.touches_of_visitor.get((program_id, visitor_id), {})
        return _touch_order(self._t, program_id, ids)

    def of_participant(self, program_id: str, participant_id: str) -> list[TouchRecord]:
        ids = self._t.touches_of_participant.get((program_id, participant_id), {})
        return _touch_order(self._t, program_id, ids)

    def attach(self, program_id: str, visitor_id: str, participant_id: str) -> None:
        for record in self.of_visitor(program_id, visitor_id):
            if record.participant_id is None:
                new = attrs.evolve(record, participant_id=participant_id)
                self._u._set(self._t.touches, (program_id, record.touch_id), new)
                self._u._index(
                    self._t.touches_of_participant, (program_id, participant_id), record.touch_id
                )

    def purge(self, program_id: str, before: datetime) -> int:
        old = [r for (p, _), r in self._t.touches.items() if p == program_id and r.at < before]
        return self._delete(program_id, old)

    def forget(self, program_id: str, participant_id: str) -> int:
        return self._delete(program_id, self.of_participant(program_id, participant_id))

    def _delete(self, program_id: str, old: list[TouchRecord]) -> int:
        for record in old:
            self._u._discard(self._t.touches, (program_id, record.touch_id))
            for index, subject in (
                (self._t.touches_of_visitor, record.visitor_id),
                (self._t.touches_of_participant, record.participant_id),
            ):
                if subject is not None and (program_id, subject) in index:
                    self._u._discard(index[(program_id, subject)], record.touch_id)
        return len(old)


class _Orders(_Repo):
    def get(self, program_id: str, order_id: str) -> OrderRecord | None:
        return self._t.orders.get((program_id, order_id))

    def add(self, record: OrderRecord) -> None:
        self._u._insert(self._t.orders, (record.program_id, record.order_id), record, "order")

    def update(self, record: OrderRecord) -> None:
        key = (record.program_id, record.order_id)
        old = self._t.orders.get(key)
        if old is None:
            raise StoreError(f"unknown order {key!r}")
        new = attrs.evolve(old, referral_id=record.referral_id, converted=record.converted)
        self._u._set(self._t.orders, key, new)

    def refund(self, program_id: str, refund_id: str) -> RefundRecord | None:
        return self._t.refunds.get((program_id, refund_id))

    def add_refund(self, record: RefundRecord) -> None:
        self._u._insert(self._t.refunds, (record.program_id, record.refund_id), record, "refund")

    def chargeback(self, program_id: str, chargeback_id: str) -> ChargebackRecord | None:
        return self._t.chargebacks.get((program_id, chargeback_id))

    def add_chargeback(self, record: ChargebackRecord) -> None:
        key = (record.program_id, record.chargeback_id)
        self._u._insert(self._t.chargebacks, key, record, "chargeback")


class _Ledger(_Repo):
    def add_reward(self, reward: Reward, entry: Entry) -> None:
        self._u._insert(self._t.rewards, reward.reward_id, reward, "reward")
        self._u._append(
            self._t.rewards_of, (reward.program_id, reward.participant_id), reward.reward_id
        )
        if reward.order_id is not None:
            self._u._append(
                self._t.rewards_of_order, (reward.program_id, reward.order_id), reward.reward_id
            )
        self.append((entry,))

    def append(self, entries: Sequence[Entry]) -> None:
        t, u = self._t, self._u
        for entry in entries:
            if entry.reward_id not in t.rewards:
                raise StoreError(
                    f"entry {entry.entry_id!r} names unknown reward {entry.reward_id!r}"
                )
            previous = t.entries.get(entry.reward_id)
            old_state = previous[-1].state_after if previous else None
            u._insert(t.entry_ids, entry.entry_id, None, "entry")
            u._append(t.entries, entry.reward_id, entry)
            if old_state is not None and old_state is not entry.state_after:
                u._discard(t.by_state.get((entry.program_id, old_state), {}), entry.reward_id)
            bucket = t.by_state.get((entry.program_id, entry.state_after))
            if bucket is None:
                bucket = {}
                u._set(t.by_state, (entry.program_id, entry.state_after), bucket)
            if entry.reward_id not in bucket:
                u._set(bucket, entry.reward_id, None)

    def rewards(
        self,
        program_id: str,
        *,
        participant_id: str | None = None,
        order_id: str | None = None,
    ) -> list[Reward]:
        if (participant_id is None) == (order_id is None):
            raise StoreError("give exactly one of participant_id, order_id")
        if participant_id is not None:
            ids = self._t.rewards_of.get((program_id, participant_id), [])
        else:
            assert order_id is not None
            ids = self._t.rewards_of_order.get((program_id, order_id), [])
        return [self._t.rewards[i] for i in ids]

    def entries(self, reward_ids: Iterable[str]) -> dict[str, list[Entry]]:
        return {i: list(self._t.entries.get(i, ())) for i in reward_ids}

    def in_state(
        self, program_id: str, state: RewardState, *, due_by: datetime | None, limit: int
    ) -> list[Reward]:
        bucket = self._t.by_state.get((program_id, state), {})
        rewards = (self._t.rewards[i] for i in bucket)
        if due_by is not None:
            rewards = (r for r in rewards if r.payable_at <= due_by)
        return sorted(rewards, key=lambda r: (r.payable_at, r.reward_id))[:limit]

    def of_kind(
        self,
        program_id: str,
        kind: str,
        *,
        created_by: datetime,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[Reward]:
        # A scan: a batch operation (Engine.expire_points) calls it once per page.
        found = [
            r
            for r in self._t.rewards.values()
            if r.program_id == program_id
            and r.unit.kind == kind
            and r.created_at <= created_by
            and (after is None or (r.created_at, r.reward_id) > after)
        ]
        return sorted(found, key=lambda r: (r.created_at, r.reward_id))[: max(limit, 0)]


class _Counters(_Repo):
    def get(self, keys: Iterable[CounterKey]) -> dict[CounterKey, Decimal]:
        c = self._t.counters
        return {k: c.get(k, _ZERO) for k in keys}

    def add(self, key: CounterKey, delta: Decimal) -> None:
        if delta:
            self._u._set(self._t.counters, key, self._t.counters.get(key, _ZERO) + delta)


class _Outbox(_Repo):
    def add(self, notifications: Sequence[Notification]) -> None:
        t = self._t
        for n in notifications:
            nid = n.notification_id
            self._u._insert(t.outbox, nid, n, "notification")
            self._u._set(t.outbox_status, nid, OutboxStatus())
            self._u._set(t.outbox_seq, nid, len(t.outbox_seq))
            self._u._set(t.outbox_open, nid, None)

    def pending(self, limit: int) -> list[Notification]:
        if limit < 1:
            return []
        t = self._t
        ids = sorted(t.outbox_open, key=t.outbox_seq.__getitem__)[:limit]
        return [t.outbox[nid] for nid in ids]

    def due(self, at: datetime, limit: int) -> list[tuple[Notification, int]]:
        if limit < 1:
            return []
        t = self._t
        retries: list[tuple[datetime, int, str]] = []
        fresh: list[tuple[int, str]] = []
        for nid in t.outbox_open:
            status = t.outbox_status[nid]
            if status.next_attempt_at is None:
                fresh.append((t.outbox_seq[nid], nid))
            elif status.next_attempt_at <= at:
                retries.append((status.next_attempt_at, t.outbox_seq[nid], nid))
        ids = [r[2] for r in sorted(retries)] + [f[1] for f in sorted(fresh)]
        return [(t.outbox[nid], t.outbox_status[nid].attempts) for nid in ids[:limit]]

    def mark_delivered(self, notification_id: str, at: datetime) -> None:
        old = self._t.outbox_status.get(notification_id)
        if old is None or old.delivered_at is not None:
            return
        new = OutboxStatus(at, old.attempts + 1, old.last_error)
        self._u._set(self._t.outbox_status, notification_id, new)
        self._u._discard(self._t.outbox_open, notification_id)
        self._u._discard(self._t.outbox_dead, notification_id)

    def mark_failed(
        self, notification_id: str, at: datetime, error: str, retry_at: datetime | None = None
    ) -> None:
        if notification_id not in self._t.outbox_open:
            return
        old = self._t.outbox_status[notification_id]
        new = OutboxStatus(None, old.attempts + 1, error, at if retry_at is None else retry_at)
        self._u._set(self._t.outbox_status, notification_id, new)

    def mark_dead(self, notification_id: str, at: datetime, error: str) -> None:
        if notification_id not in self._t.outbox_open:
            return
        old = self._t.outbox_status[notification_id]
        new = OutboxStatus(None, old.attempts + 1, error, None, at)
        self._u._set(self._t.outbox_status, notification_id, new)
        self._u._discard(self._t.outbox_open, notification_id)
        self._u._set(self._t.outbox_dead, notification_id, None)

    def dead(self, limit: int) -> list[DeadLetter]:
        if limit < 1:
            return []
        t = self._t
        letters = []
        for nid in t.outbox_dead:
            s = t.outbox_status[nid]
            assert s.dead_at is not None
            letters.append((s.dead_at, t.outbox_seq[nid], nid, s))
        letters.sort(key=lambda x: (x[0], x[1]))
        return [
            DeadLetter(t.outbox[nid], s.attempts, s.last_error, dead_at)
            for dead_at, _, nid, s in letters[:limit]
        ]

    def revive(self, notification_ids: Sequence[str]) -> int:
        t = self._t
        revived = 0
        for nid in dict.fromkeys(notification_ids):
            if nid not in t.outbox_dead:
                continue
            old = t.outbox_status[nid]
            self._u._set(t.outbox_status, nid, OutboxStatus(None, 0, old.last_error))
            self._u._discard(t.outbox_dead, nid)
            self._u._set(t.outbox_open, nid, None)
            revived += 1
        return revived


_OPEN = (PayoutStatus.PENDING, PayoutStatus.FAILED)


class _Payouts(_Repo):
    def add(self, payout: Payout) -> None:
        self._u._insert(self._t.payouts, payout.payout_id, payout, "payout")

    def get(self, program_id: str, payout_id: str) -> Payout | None:
        found = self._t.payouts.get(payout_id)
        return found if found is not None and found.program_id == program_id else None

    def update(self, payout: Payout) -> None:
        old = self._t.payouts.get(payout.payout_id)
        if old is None:
            raise StoreError(f"payout {payout.payout_id!r} is not recorded")
        new = attrs.evolve(
            old,
            status=payout.status,
            attempts=payout.attempts,
            error=payout.error,
            updated_at=payout.updated_at,
        )
        self._u._set(self._t.payouts, payout.payout_id, new)

    def open(self, program_id: str, participant_id: str | None, limit: int) -> list[Payout]:
        found = [
            p
            for p in self._t.payouts.values()
            if p.program_id == program_id
            and p.status in _OPEN
            and (participant_id is None or p.participant_id == participant_id)
        ]
        return sorted(found, key=lambda p: (p.created_at, p.payout_id))[: max(limit, 0)]


class InMemoryStore:
    """The reference [`Store`][referralkit.Store]: all records in memory.

    Units of work are serializable (one at a time, across threads) and roll back through an
    undo log, never by copying the state. Used by the tests, the examples and the demo.
    """

    def __init__(self) -> None:
        self._tables = _Tables()
        self._lock = threading.RLock()

    def unit_of_work(self) -> _MemoryUnitOfWork:
        """Begin a unit of work (use it in a ``with`` block)."""
        return _MemoryUnitOfWork(self)

    def dump(self) -> Mapping[str, list[Any]]:
        """Every record, by table, in key order."""
        t = self._tables
        with self._lock:
            entries = [e for rid in sorted(t.entries) for e in t.entries[rid]]
            return {
                "events": [t.events[k] for k in sorted(t.events)],
                "programs": [t.programs[k] for k in sorted(t.programs)],
                "participants": [t.participants[k] for k in sorted(t.participants)],
                "codes": [t.codes[k] for k in sorted(t.codes)],
                "personal_data": [(k, t.emails[k]) for k in sorted(t.emails)],
                "referrals": [t.referrals[k] for k in sorted(t.referrals)],
                "orders": [t.orders[k] for k in sorted(t.orders)],
                "refunds": [t.refunds[k] for k in sorted(t.refunds)],
                "chargebacks": [t.chargebacks[k] for k in sorted(t.chargebacks)],
                "rewards": [t.rewards[k] for k in sorted(t.rewards)],
                "entries": entries,
                "counters": [(k, t.counters[k]) for k in sorted(t.counters) if t.counters[k]],
                "outbox": [t.outbox[k] for k in sorted(t.outbox)],
                "outbox_status": [(k, t.outbox_status[k]) for k in sorted(t.outbox_status)],
                "payouts": [t.payouts[k] for k in sorted(t.payouts)],
                "touches": [t.touches[k] for k in sorted(t.touches)],
            }

    def __repr__(self) -> str:
        return f"InMemoryStore({len(self._tables.events)} events)"
