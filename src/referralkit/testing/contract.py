"""The store contract: a pytest suite every [`Store`][referralkit.Store] must pass.

Subclass [`StoreContract`][referralkit.testing.StoreContract] once per store and override
one factory; pytest collects the subclass (its name starts with ``Test``) and runs every
test against a fresh store:

```python
from referralkit.testing import StoreContract


class TestSQLiteStore(StoreContract):
    def make_store(self) -> rk.Store:
        return SQLiteStore(":memory:")
```

The tests exercise only what the docstrings of the ports in ``referralkit._ports`` promise,
through the ports themselves: the unit of work (commit, rollback, conflicts), each
repository's queries and conflicts, ``dump()``, exact round-trips of every record, and a
short run of the [`Engine`][referralkit.Engine] that must give the same ledger as the
reference [`InMemoryStore`][referralkit.InMemoryStore]. Needs the ``testing`` extra
(``pip install 'referralkit[testing]'``).
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from functools import partial
from typing import Any, ClassVar, Final, TypeVar

import attrs
import pytest
from dateutil.relativedelta import relativedelta
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from referralkit._adapters.memory import InMemoryStore
from referralkit._engine import Engine
from referralkit._errors import ConcurrencyError, StoreError
from referralkit._ports import CounterKey, Store, UnitOfWork, event_key, events_about
from referralkit._program import Program
from referralkit._values.clock import ManualClock
from referralkit._values.decisions import Decision, Verdict
from referralkit._values.events import (
    Chargeback,
    Click,
    Event,
    LineItem,
    Purchase,
    Refund,
    Signup,
)
from referralkit._values.money import Money
from referralkit._values.rates import Rate
from referralkit._values.records import (
    ChargebackRecord,
    CodeRecord,
    DeadLetter,
    Entry,
    EntryKind,
    EventRecord,
    Notification,
    OrderRecord,
    OutboxStatus,
    Outcome,
    ParticipantRecord,
    Payout,
    PayoutStatus,
    ProgramRecord,
    Referral,
    RefundRecord,
    Reversal,
    Reward,
    RewardGrant,
    RewardState,
    Role,
    TouchRecord,
)
from referralkit._values.rewards import (
    Badge,
    Cash,
    Credit,
    Discount,
    FreePeriod,
    Points,
    RewardValue,
    Unit,
)
from referralkit.policies import DoubleSided

__all__ = ["StoreContract"]

T = TypeVar("T")

# -- fixed data ---------------------------------------------------------------------------
P = "contract"
"""The program id most records use."""
OTHER = "contract-other"
"""A second program id, to check that keys are scoped by program."""

TOKYO = timezone(timedelta(hours=9))
KATHMANDU = timezone(timedelta(hours=5, minutes=45))
NEW_YORK = timezone(timedelta(hours=-5))
T0 = datetime(2026, 3, 2, 9, 30, 15, 123456, tzinfo=TOKYO)
"""A non-UTC aware datetime with microseconds."""

TABLES = (
    "events",
    "programs",
    "participants",
    "codes",
    "personal_data",
    "referrals",
    "orders",
    "refunds",
    "chargebacks",
    "rewards",
    "entries",
    "counters",
    "outbox",
    "outbox_status",
    "payouts",
    "touches",
)
"""The tables ``dump()`` returns; ``referralkit.testing.invariants`` reads them by name."""

MARKER: CounterKey = (P, "contract.marker", "")
"""A counter written next to a conflicting write, to see whether the unit rolled back."""


def _at(minutes: int = 0, tz: timezone = TOKYO) -> datetime:
    return (T0 + timedelta(minutes=minutes)).astimezone(tz)


def _jpy(amount: str) -> Money:
    return Money(amount, "JPY")


def _bhd(amount: str) -> Money:
    return Money(amount, "BHD")


def _usd(amount: str) -> Money:
    return Money(amount, "USD")


# -- record factories --------------------------------------------------------------------
def _event_record(
    event_id: str = "evt-1",
    *,
    program_id: str = P,
    digest: str = "digest-1",
    event: Event | None = None,
    outcome: Outcome | None = None,
) -> EventRecord:
    if event is None:
        event = Click(event_id=event_id, at=_at(), code="ALICE123", visitor_id="v-1")
    if outcome is None:
        outcome = Outcome(event_id, event.kind)
    return EventRecord(program_id, event_id, digest, event, outcome)


def _program_record(version: int = 1, *, program_id: str = P) -> ProgramRecord:
    return ProgramRecord(
        program_id=program_id,
        version=version,
        digest=f"digest-v{version}",
        effective_at=_at(version, KATHMANDU),
        published_at=_at(version + 1, NEW_YORK),
        definition={
            "id": program_id,
            "version": version,
            "hold": {"$rd": {"days": 30}},
            "min_order": None,
            "first_purchase_only": True,
            "policies": [["DoubleSided", ["Cash", "20.00 USD"], ["Points", 10, "points"]]],
        },
    )


def _participant(
    participant_id: str = "bob", *, program_id: str = P, signed_up: bool = True
) -> ParticipantRecord:
    return ParticipantRecord(
        program_id, participant_id, _at(0, NEW_YORK), _at(1, TOKYO) if signed_up else None
    )


def _code(
    code: str = "ALICE123", participant_id: str = "alice", *, program_id: str = P
) -> CodeRecord:
    return CodeRecord(program_id, code, participant_id, _at(2, KATHMANDU))


def _referral(
    referee_id: str = "bob", referrer_id: str = "alice", *, program_id: str = P
) -> Referral:
    return Referral(
        referral_id=f"ref_{program_id}_{referee_id}",
        program_id=program_id,
        program_version=1,
        referrer_id=referrer_id,
        referee_id=referee_id,
        code="ALICE123",
        channel="email",
        created_at=_at(3),
        event_id=f"evt-signup-{referee_id}",
    )


def _touch(
    touch_id: str = "tch-1",
    *,
    minutes: int = 4,
    visitor_id: str | None = "v-1",
    participant_id: str | None = None,
    kind: str = "click",
    program_id: str = P,
) -> TouchRecord:
    return TouchRecord(
        program_id,
        touch_id,
        kind,
        _at(minutes, KATHMANDU),
        f"evt-{touch_id}",
        visitor_id=visitor_id,
        participant_id=participant_id,
        referrer_id="alice",
        code="ALICE123",
        channel="social",
        campaign="spring",
        data={"utm_source": "newsletter", "utm_medium": "email"},
    )


def _order(
    order_id: str = "order-1",
    participant_id: str = "bob",
    *,
    program_id: str = P,
    amount: Money | None = None,
) -> OrderRecord:
    return OrderRecord(
        program_id=program_id,
        order_id=order_id,
        participant_id=participant_id,
        amount=_jpy("1500") if amount is None else amount,
        at=_at(4, NEW_YORK),
        event_id=f"evt-{order_id}",
        referral_id=f"ref_{program_id}_{participant_id}",
        converted=True,
        digest=f"digest-{order_id}",
    )


def _refund(
    refund_id: str = "refund-1", order_id: str = "order-1", *, program_id: str = P
) -> RefundRecord:
    return RefundRecord(
        program_id, refund_id, order_id, _bhd("1.250"), _at(5), f"evt-{refund_id}", "digest-r"
    )


def _chargeback(
    chargeback_id: str = "cb-1", order_id: str = "order-1", *, program_id: str = P
) -> ChargebackRecord:
    return ChargebackRecord(
        program_id, chargeback_id, order_id, _at(6, KATHMANDU), f"evt-{chargeback_id}", "digest-c"
    )


def _reward(
    reward_id: str = "rwd-1",
    participant_id: str = "alice",
    *,
    program_id: str = P,
    order_id: str | None = "order-1",
    value: RewardValue | None = None,
    created_minutes: int = 0,
    payable_at: datetime | None = None,
) -> Reward:
    return Reward(
        reward_id=reward_id,
        program_id=program_id,
        program_version=1,
        referral_id=f"ref_{program_id}_bob",
        participant_id=participant_id,
        role=Role.REFERRER,
        value=Cash(_usd("20.00")) if value is None else value,
        policy="double_sided",
        source_event_id=f"evt-{order_id}",
        order_id=order_id,
        base_amount=None if order_id is None else _jpy("1500"),
        created_at=_at(created_minutes),
        payable_at=_at(60 * 24 * 30) if payable_at is None else payable_at,
    )


def _entry(
    entry_id: str,
    reward: Reward,
    *,
    kind: EntryKind = EntryKind.GRANTED,
    state_after: RewardState = RewardState.PENDING,
    quantity: Decimal | None = None,
    minutes: int = 0,
    cause: str | None = None,
) -> Entry:
    return Entry(
        entry_id=entry_id,
        reward_id=reward.reward_id,
        program_id=reward.program_id,
        participant_id=reward.participant_id,
        kind=kind,
        quantity=reward.value.quantity if quantity is None else quantity,
        at=_at(minutes),
        cause=reward.source_event_id if cause is None else cause,
        state_after=state_after,
    )


def _granted(reward: Reward) -> Entry:
    return _entry(f"ent_{reward.reward_id}_granted", reward)


def _notification(
    notification_id: str = "ntf-1", *, minutes: int = 0, program_id: str = P
) -> Notification:
    return Notification(
        notification_id=notification_id,
        program_id=program_id,
        kind="reward_earned",
        recipient_id="alice",
        created_at=_at(minutes, NEW_YORK),
        data={"value": "20.00 USD cash", "payable_on": "2026-04-01", "reward_id": "rwd-1"},
    )


REWARD_VALUES: tuple[RewardValue, ...] = (
    Cash(_jpy("2000")),
    Cash(_bhd("0.125")),
    Credit(_bhd("1.500")),
    Credit(_usd("10.00")),
    Discount(percent=Decimal("12.5")),
    Discount(amount=_jpy("300")),
    FreePeriod(days=14),
    FreePeriod(months=1),
    Points(250, account="miles"),
    Points(1),
    Badge("gold"),
)
"""One reward value of every type (and both forms of Discount and FreePeriod)."""

METADATA: Mapping[str, Any] = {
    "utm": {"source": "newsletter", "campaign": "spring"},
    "tags": ["a", "b"],
    "count": 3,
    "ratio": 1.5,
    "vip": True,
    "note": None,
}


def _events() -> tuple[Event, ...]:
    """One event of every type, with metadata, line items and JPY / BHD amounts."""
    return (
        Click(
            event_id="evt-click",
            at=_at(0, KATHMANDU),
            code="alice-123",
            visitor_id="visitor-9",
            channel="social",
            metadata=METADATA,
        ),
        Signup(
            event_id="evt-signup",
            participant_id="bob",
            at=_at(1, NEW_YORK),
            code="ALICE 123",
            email="Bob@Example.com",
            channel="email",
            metadata={"form": "landing"},
        ),
        Purchase(
            event_id="evt-purchase",
            participant_id="bob",
            order_id="order-1",
            amount=_jpy("1500"),
            at=_at(2),
            items=(
                LineItem(sku="tea", quantity=2, unit_price=_jpy("500"), category="drinks"),
                LineItem(sku="cup", unit_price=_jpy("500")),
            ),
            metadata=METADATA,
        ),
        Purchase(
            event_id="evt-purchase-bhd",
            participant_id="carol",
            order_id="order-2",
            amount=_bhd("12.345"),
            at=_at(3, UTC),
        ),
        Refund(
            event_id="evt-refund",
            refund_id="refund-1",
            order_id="order-1",
            amount=_jpy("500"),
            at=_at(4, KATHMANDU),
            metadata={"reason": "damaged"},
        ),
        Chargeback(
            event_id="evt-chargeback",
            chargeback_id="cb-1",
            order_id="order-2",
            at=_at(5, NEW_YORK),
        ),
    )


def _rich_outcome(event: Event) -> Outcome:
    """An outcome with grants of every reward value type, reversals and decisions."""
    grants = tuple(
        RewardGrant(Role.REFERRER if i % 2 else Role.REFEREE, f"p-{i}", value, "double_sided")
        for i, value in enumerate(REWARD_VALUES)
    )
    return Outcome(
        event_id=event.event_id,
        event_type=event.kind,
        duplicate=False,
        referral_id="ref_contract_bob",
        grants=grants,
        reward_ids=tuple(f"rwd-{i}" for i in range(len(grants))),
        reversals=(
            Reversal("rwd-0", "p-0", Unit("cash", "JPY"), Decimal("500")),
            Reversal("rwd-1", "p-1", Unit("cash", "BHD"), Decimal("0.042")),
        ),
        decisions=(
            Decision.of(
                "attribution",
                Verdict.NOTED,
                "referral.created",
                referee="bob",
                referrer="alice",
                code="ALICE123",
            ),
            Decision("double_sided", Verdict.GRANTED, "policy.granted"),
            Decision.of("engine", Verdict.SKIPPED, "qualify.below_minimum", amount="1 JPY"),
        ),
    )


def _add_touch(uow: UnitOfWork, record: TouchRecord) -> None:
    uow.touches.add(record)


def _keyed_records() -> list[EventRecord]:
    """Events whose keys collide across kinds (a visitor id equal to a participant id)."""
    events: list[Event] = [
        Signup(event_id="k-signup", participant_id="bob", at=_at(0), visitor_id="v-1"),
        Click(event_id="k-click-bob", at=_at(1), visitor_id="bob"),
        Click(event_id="k-click-none", at=_at(2), code="ALICE123"),
        Click(event_id="k-click-v1", at=_at(3), visitor_id="v-1"),
        Purchase(
            event_id="k-purchase",
            participant_id="bob",
            order_id="order-1",
            amount=_jpy("1500"),
            at=_at(4),
        ),
        Refund(
            event_id="k-refund",
            refund_id="refund-1",
            order_id="order-1",
            amount=_jpy("500"),
            at=_at(5),
        ),
        Purchase(
            event_id="k-purchase-carol",
            participant_id="carol",
            order_id="bob",
            amount=_jpy("900"),
            at=_at(6),
        ),
        Chargeback(event_id="k-chargeback", chargeback_id="cb-1", order_id="order-1", at=_at(7)),
    ]
    return [_event_record(e.event_id, event=e, digest=f"d-{e.event_id}") for e in events]


_KEYS: Final = ("a", "b", "c")
_KEYED_PROGRAMS: Final = itertools.count()


def _keyed_events() -> st.SearchStrategy[Callable[[str], Event]]:
    """Makers of events (given their id) whose keys and other ids come from a few texts,
    so that keys of different kinds collide."""
    key, other = st.sampled_from(_KEYS), st.sampled_from(_KEYS)
    at = _at()
    return st.one_of(
        st.builds(lambda v: lambda i: Click(event_id=i, at=at, visitor_id=v), st.none() | key),
        st.builds(
            lambda p, v: lambda i: Signup(event_id=i, participant_id=p, at=at, visitor_id=v),
            key,
            st.none() | other,
        ),
        st.builds(
            lambda p, o: (
                lambda i: Purchase(
                    event_id=i, participant_id=p, order_id=o, amount=_jpy("100"), at=at
                )
            ),
            key,
            other,
        ),
        st.builds(
            lambda o: (
                lambda i: Refund(
                    event_id=i, refund_id=f"r-{i}", order_id=o, amount=_jpy("1"), at=at
                )
            ),
            key,
        ),
        st.builds(
            lambda o: lambda i: Chargeback(event_id=i, chargeback_id=f"c-{i}", order_id=o, at=at),
            key,
        ),
    )


def _add_event(uow: UnitOfWork, record: EventRecord) -> None:
    uow.events.add(record)


# -- comparison --------------------------------------------------------------------------
def _assert_same(actual: Any, expected: Any, path: str, *, offsets: bool = False) -> None:
    """Assert ``actual`` equals ``expected`` field by field, types included.

    Compares the fields attrs leaves out of ``==`` (metadata, notification data, program
    definitions) too. Mappings may be of any Mapping type. With ``offsets``, aware
    datetimes must also keep their UTC offset.
    """
    if isinstance(expected, Mapping):
        assert isinstance(actual, Mapping), f"{path}: expected a mapping, got {actual!r}"
        assert sorted(actual) == sorted(expected), (
            f"{path}: keys {sorted(actual)} != {sorted(expected)}"
        )
        for key in expected:
            _assert_same(actual[key], expected[key], f"{path}[{key!r}]", offsets=offsets)
        return
    assert type(actual) is type(expected), (
        f"{path}: expected {type(expected).__name__} {expected!r}, "
        f"got {type(actual).__name__} {actual!r}"
    )
    if attrs.has(type(expected)):
        for field in attrs.fields(type(expected)):
            name = field.name
            _assert_same(
                getattr(actual, name), getattr(expected, name), f"{path}.{name}", offsets=offsets
            )
        return
    if isinstance(expected, list | tuple):
        assert len(actual) == len(expected), f"{path}: {actual!r} != {expected!r}"
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            _assert_same(a, e, f"{path}[{i}]", offsets=offsets)
        return
    assert actual == expected, f"{path}: {actual!r} != {expected!r}"
    if offsets and isinstance(expected, datetime):
        # The same instant, still aware; a store may hand it back in UTC.
        assert actual.utcoffset() is not None, f"{path}: {actual!r} came back naive"


def _by_id(records: list[Any], attribute: str) -> list[Any]:
    return sorted(records, key=lambda r: str(getattr(r, attribute)))


# -- the suite ---------------------------------------------------------------------------
class StoreContract:
    """The behaviour every [`Store`][referralkit.Store] promises, as pytest tests.

    Subclass it in a class whose name starts with ``Test`` and override
    [`make_store`][referralkit.testing.StoreContract.make_store]; every test gets a fresh,
    empty store. Override ``close_store`` if the store needs more than ``close()``.
    ``StoreContract`` itself is not collected; its subclasses are.
    """

    __test__: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__test__" not in cls.__dict__:
            cls.__test__ = True

    # -- hooks ----------------------------------------------------------------------------
    def make_store(self) -> Store:
        """A new, empty store for one test. Override this."""
        raise NotImplementedError(f"{type(self).__name__} must override make_store()")

    def close_store(self, store: Store) -> None:
        """Release a store made by ``make_store``; calls its ``close()`` if it has one."""
        close = getattr(store, "close", None)
        if callable(close):
            close()

    @pytest.fixture
    def store(self) -> Iterator[Store]:
        """A fresh store from ``make_store``, closed after the test."""
        store = self.make_store()
        try:
            yield store
        finally:
            self.close_store(store)

    # -- helpers --------------------------------------------------------------------------
    @staticmethod
    def commit(store: Store, *writes: Callable[[UnitOfWork], object]) -> None:
        """Run ``writes`` in order in one unit of work and commit it."""
        with store.unit_of_work() as uow:
            for write in writes:
                write(uow)
            uow.commit()

    def add_rewards(self, store: Store, *rewards: Reward) -> None:
        """Add each reward with its granted entry, one committed unit per reward, in order."""
        for reward in rewards:
            with store.unit_of_work() as uow:
                uow.ledger.add_reward(reward, _granted(reward))
                uow.commit()

    @staticmethod
    def read(store: Store, query: Callable[[UnitOfWork], T]) -> T:
        """Run ``query`` in a unit of work that is left without committing."""
        with store.unit_of_work() as uow:
            return query(uow)

    def assert_conflict(
        self,
        store: Store,
        write: Callable[[UnitOfWork], object],
        error: type[StoreError] = ConcurrencyError,
    ) -> None:
        """``write`` raises ``error`` at the write or at commit, and its unit rolls back."""

        def unit() -> None:
            with store.unit_of_work() as uow:
                uow.counters.add(MARKER, Decimal(1))
                write(uow)
                uow.commit()

        with pytest.raises(error):
            unit()
        assert self.read(store, lambda u: u.counters.get([MARKER])) == {MARKER: Decimal(0)}, (
            "the unit that raised was not rolled back"
        )

    @staticmethod
    def write_one_of_each(uow: UnitOfWork) -> None:
        """Write one record through every repository."""
        reward = _reward()
        uow.events.add(_event_record())
        uow.programs.add(_program_record())
        uow.participants.put(_participant())
        uow.participants.add_code(_code())
        uow.participants.set_email(P, "bob", "bob@example.com")
        uow.referrals.add(_referral())
        uow.orders.add(_order())
        uow.orders.add_refund(_refund())
        uow.orders.add_chargeback(_chargeback())
        uow.ledger.add_reward(reward, _granted(reward))
        uow.counters.add((P, "referrals", "alice"), Decimal(1))
        uow.outbox.add([_notification()])
        uow.touches.add(_touch())

    @staticmethod
    def assert_one_of_each(uow: UnitOfWork, *, visible: bool) -> None:
        """Assert every record of ``write_one_of_each`` is visible, or that none is."""
        reward = _reward()
        seen = {
            "event": uow.events.get(P, "evt-1") == _event_record(),
            "program": uow.programs.get(P, 1) == _program_record(),
            "versions": uow.programs.versions(P) == [_program_record()],
            "participant": uow.participants.get(P, "bob") == _participant(),
            "code_owner": uow.participants.code_owner(P, "ALICE123") == _code(),
            "code_of": uow.participants.code_of(P, "alice") == _code(),
            "email": uow.participants.email_of(P, "bob") == "bob@example.com",
            "referral": uow.referrals.get(_referral().referral_id) == _referral(),
            "by_referee": uow.referrals.by_referee(P, "bob") == _referral(),
            "order": uow.orders.get(P, "order-1") == _order(),
            "refund": uow.orders.refund(P, "refund-1") == _refund(),
            "chargeback": uow.orders.chargeback(P, "cb-1") == _chargeback(),
            "rewards": uow.ledger.rewards(P, participant_id="alice") == [reward],
            "by_order": uow.ledger.rewards(P, order_id="order-1") == [reward],
            "entries": uow.ledger.entries([reward.reward_id]).get(reward.reward_id)
            == [_granted(reward)],
            "in_state": uow.ledger.in_state(P, RewardState.PENDING, due_by=None, limit=10)
            == [reward],
            "counter": uow.counters.get([(P, "referrals", "alice")])
            == {(P, "referrals", "alice"): Decimal(1)},
            "outbox": uow.outbox.pending(10) == [_notification()],
            "touches": uow.touches.of_visitor(P, "v-1") == [_touch()],
        }
        wrong = sorted(name for name, present in seen.items() if present is not visible)
        assert not wrong, f"{'not visible' if visible else 'still visible'}: {wrong}"

    # -- unit of work ---------------------------------------------------------------------
    def test_commit_makes_writes_visible_to_a_later_unit(self, store: Store) -> None:
        """Writes to every repository are visible to a later unit once committed."""
        self.commit(store, self.write_one_of_each)
        with store.unit_of_work() as uow:
            self.assert_one_of_each(uow, visible=True)

    def test_reads_see_the_units_own_writes(self, store: Store) -> None:
        """Inside a unit, every query sees the unit's own uncommitted writes."""
        with store.unit_of_work() as uow:
            self.write_one_of_each(uow)
            self.assert_one_of_each(uow, visible=True)

    def test_leaving_without_commit_rolls_back_every_repository(self, store: Store) -> None:
        """A unit left without commit() leaves nothing visible in any repository."""
        with store.unit_of_work() as uow:
            self.write_one_of_each(uow)
        with store.unit_of_work() as uow:
            self.assert_one_of_each(uow, visible=False)

    def test_an_exception_inside_the_unit_rolls_back(self, store: Store) -> None:
        """An exception raised inside the with-block propagates and rolls the unit back."""

        class BoomError(Exception):
            pass

        def unit() -> None:
            with store.unit_of_work() as uow:
                self.write_one_of_each(uow)
                raise BoomError

        with pytest.raises(BoomError):
            unit()
        with store.unit_of_work() as uow:
            self.assert_one_of_each(uow, visible=False)

    def test_rollback_discards_the_units_writes(self, store: Store) -> None:
        """An explicit rollback() discards every write of the unit."""
        with store.unit_of_work() as uow:
            self.write_one_of_each(uow)
            uow.rollback()
        with store.unit_of_work() as uow:
            self.assert_one_of_each(uow, visible=False)

    def test_writes_after_commit_roll_back_unless_committed_again(self, store: Store) -> None:
        """Writes made after commit() are rolled back when the block is left without another
        commit()."""
        key: CounterKey = (P, "late", "")
        with store.unit_of_work() as uow:
            uow.counters.add((P, "early", ""), Decimal(1))
            uow.commit()
            uow.counters.add(key, Decimal(1))
        got = self.read(store, lambda u: u.counters.get([(P, "early", ""), key]))
        assert got == {(P, "early", ""): Decimal(1), key: Decimal(0)}

    def test_rolling_back_restores_replaced_values(self, store: Store) -> None:
        """A rolled-back unit restores values it replaced (participant, email, counter,
        outbox status) to their committed state."""

        def setup(uow: UnitOfWork) -> None:
            uow.participants.put(_participant(signed_up=False))
            uow.participants.set_email(P, "bob", "old@example.com")
            uow.counters.add((P, "n", ""), Decimal("2.50"))
            uow.outbox.add([_notification()])

        self.commit(store, setup)
        before = store.dump()
        with store.unit_of_work() as uow:
            uow.participants.put(_participant(signed_up=True))
            uow.participants.set_email(P, "bob", "new@example.com")
            uow.counters.add((P, "n", ""), Decimal("-2.50"))
            uow.outbox.mark_delivered("ntf-1", _at(9))
        with store.unit_of_work() as uow:
            assert uow.participants.get(P, "bob") == _participant(signed_up=False)
            assert uow.participants.email_of(P, "bob") == "old@example.com"
            assert uow.counters.get([(P, "n", "")]) == {(P, "n", ""): Decimal("2.50")}
            assert uow.outbox.pending(10) == [_notification()]
        assert store.dump() == before

    def test_a_conflict_rolls_back_the_whole_unit(self, store: Store) -> None:
        """A conflicting write raises ConcurrencyError and none of its unit's other writes
        become visible."""
        self.commit(store, lambda u: u.orders.add(_order()))

        def write(uow: UnitOfWork) -> None:
            uow.participants.put(_participant("zoe"))
            uow.orders.add(_order(amount=_jpy("9")))

        self.assert_conflict(store, write)
        assert self.read(store, lambda u: u.participants.get(P, "zoe")) is None

    def test_a_caught_conflict_still_rolls_back_the_unit(self, store: Store) -> None:
        """A unit whose conflict was caught inside the block stays rolled back even if
        commit() is called afterwards (commit may raise StoreError)."""
        self.commit(store, lambda u: u.orders.add(_order()))
        with store.unit_of_work() as uow:
            uow.counters.add(MARKER, Decimal(1))
            try:
                uow.orders.add(_order(amount=_jpy("9")))
                uow.commit()
            except ConcurrencyError:
                with contextlib.suppress(StoreError):
                    uow.commit()
        assert self.read(store, lambda u: u.counters.get([MARKER])) == {MARKER: Decimal(0)}
        assert self.read(store, lambda u: u.orders.get(P, "order-1")) == _order()

    # -- event log ------------------------------------------------------------------------
    def test_event_log_returns_added_events_and_none_for_unknown_ids(self, store: Store) -> None:
        """events.get returns an added record by (program, event id), None otherwise."""
        self.commit(store, lambda u: u.events.add(_event_record()))
        with store.unit_of_work() as uow:
            assert uow.events.get(P, "evt-1") == _event_record()
            assert uow.events.get(P, "evt-2") is None
            assert uow.events.get(OTHER, "evt-1") is None

    def test_event_ids_are_scoped_by_program(self, store: Store) -> None:
        """The same event id in two programs is two records."""
        mine, theirs = _event_record(digest="a"), _event_record(program_id=OTHER, digest="b")
        self.commit(store, lambda u: u.events.add(mine), lambda u: u.events.add(theirs))
        with store.unit_of_work() as uow:
            assert uow.events.get(P, "evt-1") == mine
            assert uow.events.get(OTHER, "evt-1") == theirs

    def test_adding_an_event_id_twice_is_a_conflict_and_keeps_the_first(self, store: Store) -> None:
        """A second record for a known (program, event id) raises ConcurrencyError (at add or
        commit) and the first record stays."""
        first = _event_record(digest="first")
        self.commit(store, lambda u: u.events.add(first))
        self.assert_conflict(store, lambda u: u.events.add(_event_record(digest="second")))
        assert self.read(store, lambda u: u.events.get(P, "evt-1")) == first

    def test_redact_replaces_an_events_payload_only(self, store: Store) -> None:
        """events.redact replaces the logged event; digest, outcome and log position stay,
        in the unit and later; an unknown event is a StoreError."""
        first, second = _event_record("evt-1"), _event_record("evt-2")
        self.commit(store, lambda u: u.events.add(first), lambda u: u.events.add(second))
        erased = Click(event_id="evt-1", at=_at(), code="ALICE123", visitor_id="erased")
        before = self.read(store, lambda u: u.events.since(P, 0, 10))
        with store.unit_of_work() as uow:
            uow.events.redact(P, "evt-1", erased)
            assert uow.events.get(P, "evt-1") == attrs.evolve(first, event=erased)
            uow.commit()
        with store.unit_of_work() as uow:
            assert uow.events.get(P, "evt-1") == attrs.evolve(first, event=erased)
            after = uow.events.since(P, 0, 10)
        assert [(n, r.event_id) for n, r in after] == [(n, r.event_id) for n, r in before]
        assert after[1][1] == second
        with pytest.raises(StoreError), store.unit_of_work() as uow:
            uow.events.redact(P, "evt-unknown", erased)

    def test_redact_in_the_unit_that_added_the_event(self, store: Store) -> None:
        """An event redacted in the unit that added it is stored redacted."""
        erased = Click(event_id="evt-1", at=_at(), code="ALICE123", visitor_id="erased")

        def write(uow: UnitOfWork) -> None:
            uow.events.add(_event_record())
            uow.events.redact(P, "evt-1", erased)

        self.commit(store, write)
        got = self.read(store, lambda u: u.events.get(P, "evt-1"))
        assert got == attrs.evolve(_event_record(), event=erased)

    # -- events by key (KeyedEventLog: optional) ------------------------------------------
    @staticmethod
    def require_keyed(store: Store) -> None:
        """Skip the test unless the store's event log has ``about`` (``KeyedEventLog``)."""
        with store.unit_of_work() as uow:
            keyed = callable(getattr(uow.events, "about", None))
        if not keyed:
            pytest.skip(f"{type(store).__name__}'s event log has no about() (it is optional)")

    def test_about_finds_a_programs_events_by_key_in_log_order(self, store: Store) -> None:
        """events.about returns the program's events whose event_key is one of the keys, each
        once, in log order with the positions since() gives; keys of every kind share one
        namespace, and a click without a visitor has no key."""
        self.require_keyed(store)
        first, second = _keyed_records()[:5], _keyed_records()[5:]
        self.commit(store, *[partial(_add_event, record=r) for r in first])
        self.commit(store, lambda u: u.events.add(_event_record("evt-x", program_id=OTHER)))
        self.commit(store, *[partial(_add_event, record=r) for r in second])
        with store.unit_of_work() as uow:
            logged = uow.events.since(P, 0, 100)
            about = uow.events.about  # type: ignore[attr-defined]
            for keys in (["bob"], ["order-1"], ["order-1", "bob"], ["bob", "bob"], ["v-1"]):
                want = [(n, r) for n, r in logged if event_key(r.event) in keys]
                assert about(P, keys) == want, keys
            assert [r.event_id for _, r in about(P, ["bob"])] == [
                "k-signup",
                "k-click-bob",
                "k-purchase",
            ]
            assert about(P, ["nobody"]) == []
            assert about(P, []) == []
            assert about(OTHER, ["bob"]) == []
            assert [r.event_id for _, r in about(OTHER, ["v-1"])] == ["evt-x"]

    def test_about_sees_the_units_own_events_and_not_rolled_back_ones(self, store: Store) -> None:
        """events.about finds events added in the same unit (at the positions since() then
        gives), and none of a unit left without commit."""
        self.require_keyed(store)
        records = _keyed_records()
        with store.unit_of_work() as uow:
            for record in records:
                uow.events.add(record)
            found = uow.events.about(P, ["bob", "order-1"])  # type: ignore[attr-defined]
            logged = uow.events.since(P, 0, 100)
            assert found == [(n, r) for n, r in logged if event_key(r.event) in {"bob", "order-1"}]
            assert len(found) == 5
        with store.unit_of_work() as uow:
            assert uow.events.about(P, ["bob", "order-1"]) == []  # type: ignore[attr-defined]

    def test_about_finds_a_redacted_event_by_its_new_key(self, store: Store) -> None:
        """A click redacted with another visitor id is found by the new key only, in the
        unit and later; a redaction rolled back leaves it under its old key."""
        self.require_keyed(store)
        self.commit(store, lambda u: u.events.add(_event_record()))  # a click of v-1
        position = self.read(store, lambda u: u.events.since(P, 0, 10))[0][0]
        erased = Click(event_id="evt-1", at=_at(), code="ALICE123", visitor_id="erased")
        redacted = attrs.evolve(_event_record(), event=erased)
        with store.unit_of_work() as uow:
            uow.events.redact(P, "evt-1", erased)
            assert uow.events.about(P, ["erased"]) == [(position, redacted)]  # type: ignore[attr-defined]
            assert uow.events.about(P, ["v-1"]) == []  # type: ignore[attr-defined]
        with store.unit_of_work() as uow:  # rolled back
            assert uow.events.about(P, ["v-1"]) == [(position, _event_record())]  # type: ignore[attr-defined]
            assert uow.events.about(P, ["erased"]) == []  # type: ignore[attr-defined]
            uow.events.redact(P, "evt-1", erased)
            uow.commit()
        with store.unit_of_work() as uow:
            assert uow.events.about(P, ["erased", "v-1"]) == [(position, redacted)]  # type: ignore[attr-defined]

    @settings(
        max_examples=25,
        deadline=None,
        # One store per test, a new program per example; every subclass runs the method.
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.differing_executors,
        ],
    )
    @given(data=st.data())
    def test_events_about_equals_the_filtered_log(self, store: Store, data: st.DataObject) -> None:
        """For any logged events (committed over several units, some clicks redacted to
        another visitor), events_about(uow, program, keys) equals the program's whole log
        filtered by event_key, on every store (with its about() or without one)."""
        program_id = f"keyed-{next(_KEYED_PROGRAMS)}"  # one program per example
        units = data.draw(st.lists(st.lists(_keyed_events(), max_size=6), max_size=4))
        number = 0
        for unit in units:
            with store.unit_of_work() as uow:
                for make in unit:
                    event = make(f"e{number}")
                    number += 1
                    uow.events.add(
                        EventRecord(
                            program_id,
                            event.event_id,
                            "d",
                            event,
                            Outcome(event.event_id, event.kind),
                        )
                    )
                uow.commit()
        clicks = [f"e{n}" for n in range(number)]
        redact = data.draw(
            st.lists(st.sampled_from(clicks), unique=True) if clicks else st.just([])
        )
        keys = data.draw(st.lists(st.sampled_from((*_KEYS, "erased", "none")), max_size=4))
        with store.unit_of_work() as uow:
            for event_id in redact:
                logged = uow.events.get(program_id, event_id)
                assert logged is not None
                if isinstance(logged.event, Click):
                    uow.events.redact(
                        program_id, event_id, attrs.evolve(logged.event, visitor_id="erased")
                    )
            uow.commit()
        with store.unit_of_work() as uow:
            everything = []
            after = 0
            while page := uow.events.since(program_id, after, 7):
                everything.extend(page)
                after = page[-1][0]
            want = [(n, r) for n, r in everything if event_key(r.event) in set(keys)]
            assert events_about(uow, program_id, keys) == want

    # -- programs -------------------------------------------------------------------------
    def test_programs_get_returns_an_added_version(self, store: Store) -> None:
        """programs.get returns an added version, None for unknown ones."""
        self.commit(store, lambda u: u.programs.add(_program_record(1)))
        with store.unit_of_work() as uow:
            assert uow.programs.get(P, 1) == _program_record(1)
            assert uow.programs.get(P, 2) is None
            assert uow.programs.get(OTHER, 1) is None

    def test_versions_are_listed_in_version_order(self, store: Store) -> None:
        """versions() lists every version of one program in version order, whatever the
        order they were added in."""
        self.commit(store, lambda u: u.programs.add(_program_record(2)))
        self.commit(store, lambda u: u.programs.add(_program_record(3)))
        self.commit(store, lambda u: u.programs.add(_program_record(1)))
        self.commit(store, lambda u: u.programs.add(_program_record(7, program_id=OTHER)))
        with store.unit_of_work() as uow:
            assert [r.version for r in uow.programs.versions(P)] == [1, 2, 3]
            assert uow.programs.versions(P) == [_program_record(v) for v in (1, 2, 3)]
            assert uow.programs.versions(OTHER) == [_program_record(7, program_id=OTHER)]
            assert uow.programs.versions("unknown") == []

    def test_the_same_program_version_twice_is_a_conflict(self, store: Store) -> None:
        """Adding a known (program id, version) raises ConcurrencyError and keeps the first."""
        self.commit(store, lambda u: u.programs.add(_program_record(1)))
        other = attrs.evolve(_program_record(1), digest="changed")
        self.assert_conflict(store, lambda u: u.programs.add(other))
        assert self.read(store, lambda u: u.programs.get(P, 1)) == _program_record(1)

    # -- participants ---------------------------------------------------------------------
    def test_put_inserts_and_replaces_a_participant(self, store: Store) -> None:
        """participants.put inserts a participant, and a second put replaces it."""
        self.commit(store, lambda u: u.participants.put(_participant(signed_up=False)))
        assert self.read(store, lambda u: u.participants.get(P, "bob")) == _participant(
            signed_up=False
        )
        self.commit(store, lambda u: u.participants.put(_participant(signed_up=True)))
        with store.unit_of_work() as uow:
            assert uow.participants.get(P, "bob") == _participant(signed_up=True)
            assert uow.participants.get(P, "carol") is None
            assert uow.participants.get(OTHER, "bob") is None

    def test_a_participants_country_round_trips_and_is_replaced_by_put(self, store: Store) -> None:
        """A participant's country comes back as written; a later put replaces it."""
        first = attrs.evolve(_participant(signed_up=False), country="DE")
        self.commit(store, lambda u: u.participants.put(first))
        assert self.read(store, lambda u: u.participants.get(P, "bob")) == first
        second = attrs.evolve(_participant(), country=None)
        self.commit(store, lambda u: u.participants.put(second))
        with store.unit_of_work() as uow:
            found = uow.participants.get(P, "bob")
        assert found == second
        assert found is not None
        assert found.country is None
        assert store.dump()["participants"] == [second]

    def test_a_code_is_found_by_code_and_by_owner(self, store: Store) -> None:
        """add_code makes the code findable by code_owner and by code_of."""
        self.commit(store, lambda u: u.participants.add_code(_code()))
        with store.unit_of_work() as uow:
            assert uow.participants.code_owner(P, "ALICE123") == _code()
            assert uow.participants.code_of(P, "alice") == _code()
            assert uow.participants.code_owner(P, "BOB12345") is None
            assert uow.participants.code_of(P, "bob") is None
            assert uow.participants.code_owner(OTHER, "ALICE123") is None

    def test_codes_are_scoped_by_program(self, store: Store) -> None:
        """The same code may belong to different participants in two programs."""
        theirs = _code("ALICE123", "zoe", program_id=OTHER)
        self.commit(
            store,
            lambda u: u.participants.add_code(_code()),
            lambda u: u.participants.add_code(theirs),
        )
        with store.unit_of_work() as uow:
            assert uow.participants.code_owner(P, "ALICE123") == _code()
            assert uow.participants.code_owner(OTHER, "ALICE123") == theirs

    def test_a_code_taken_by_another_participant_is_a_conflict(self, store: Store) -> None:
        """Reserving a code another participant owns raises ConcurrencyError; the owner
        keeps it and the newcomer gets no code."""
        self.commit(store, lambda u: u.participants.add_code(_code("ALICE123", "alice")))
        self.assert_conflict(store, lambda u: u.participants.add_code(_code("ALICE123", "bob")))
        with store.unit_of_work() as uow:
            assert uow.participants.code_owner(P, "ALICE123") == _code("ALICE123", "alice")
            assert uow.participants.code_of(P, "bob") is None

    def test_a_participant_with_a_code_cannot_reserve_another(self, store: Store) -> None:
        """Reserving a second code for a participant raises ConcurrencyError; the first code
        stays theirs and the second stays free."""
        self.commit(store, lambda u: u.participants.add_code(_code("ALICE123", "alice")))
        self.assert_conflict(store, lambda u: u.participants.add_code(_code("ALICE999", "alice")))
        with store.unit_of_work() as uow:
            assert uow.participants.code_of(P, "alice") == _code("ALICE123", "alice")
            assert uow.participants.code_owner(P, "ALICE999") is None

    def test_set_email_then_email_of(self, store: Store) -> None:
        """set_email keeps an email that email_of returns; setting it again replaces it."""
        self.commit(store, lambda u: u.participants.set_email(P, "bob", "bob@example.com"))
        assert self.read(store, lambda u: u.participants.email_of(P, "bob")) == "bob@example.com"
        self.commit(store, lambda u: u.participants.set_email(P, "bob", "robert@example.com"))
        with store.unit_of_work() as uow:
            assert uow.participants.email_of(P, "bob") == "robert@example.com"
            assert uow.participants.email_of(P, "carol") is None
            assert uow.participants.email_of(OTHER, "bob") is None

    # -- referrals ------------------------------------------------------------------------
    def test_a_referral_is_found_by_referee_and_by_id(self, store: Store) -> None:
        """referrals.add makes a referral findable by by_referee and by get."""
        self.commit(store, lambda u: u.referrals.add(_referral()))
        with store.unit_of_work() as uow:
            assert uow.referrals.by_referee(P, "bob") == _referral()
            assert uow.referrals.get(_referral().referral_id) == _referral()
            assert uow.referrals.by_referee(P, "carol") is None
            assert uow.referrals.by_referee(OTHER, "bob") is None
            assert uow.referrals.get("ref_unknown") is None

    def test_a_second_referral_for_the_same_referee_is_a_conflict(self, store: Store) -> None:
        """A second referral for a referee raises ConcurrencyError; the first stays."""
        self.commit(store, lambda u: u.referrals.add(_referral("bob", "alice")))
        second = attrs.evolve(_referral("bob", "carol"), referral_id="ref_second")
        self.assert_conflict(store, lambda u: u.referrals.add(second))
        with store.unit_of_work() as uow:
            assert uow.referrals.by_referee(P, "bob") == _referral("bob", "alice")
            assert uow.referrals.get("ref_second") is None

    def test_referrals_by_referrer_come_in_referral_id_order(self, store: Store) -> None:
        """by_referrer lists a referrer's referrals by referral id, scoped by program."""
        self.commit(
            store,
            lambda u: u.referrals.add(_referral("carol", "alice")),
            lambda u: u.referrals.add(_referral("bob", "alice")),
            lambda u: u.referrals.add(_referral("dan", "erin")),
            lambda u: u.referrals.add(_referral("bob", "alice", program_id=OTHER)),
        )
        with store.unit_of_work() as uow:
            assert uow.referrals.by_referrer(P, "alice") == [
                _referral("bob", "alice"),
                _referral("carol", "alice"),
            ]
            assert uow.referrals.by_referrer(P, "nobody") == []
            assert uow.referrals.by_referrer(OTHER, "alice") == [
                _referral("bob", "alice", program_id=OTHER)
            ]

    def test_update_replaces_status_and_explanation_only(self, store: Store) -> None:
        """referrals.update keeps every field but status and explanation, which round-trip."""
        self.commit(store, lambda u: u.referrals.add(_referral()))
        why = (
            Decision.of("attribution", Verdict.NOTED, "touch.won", referrer="alice"),
            Decision.of("fraud", Verdict.NOTED, "referral.held", reasons="fraud.same_device"),
        )
        changed = attrs.evolve(_referral(), status="held", explanation=why, channel="sms")
        self.commit(store, lambda u: u.referrals.update(changed))
        expected = attrs.evolve(_referral(), status="held", explanation=why)
        with store.unit_of_work() as uow:
            _assert_same(uow.referrals.by_referee(P, "bob"), expected, "by_referee")
            _assert_same(uow.referrals.get(expected.referral_id), expected, "get")
            _assert_same(uow.referrals.by_referrer(P, "alice"), [expected], "by_referrer")

    def test_update_can_move_a_referral_to_another_referrer(self, store: Store) -> None:
        """referrals.update replaces referrer_id and code (a re-attribution); by_referrer
        lists the referral under the new referrer only, in this unit and later ones, and a
        rollback restores it."""
        self.commit(store, lambda u: u.referrals.add(_referral()))
        moved = attrs.evolve(_referral(), referrer_id="carol", code="CAROL123", channel="sms")
        expected = attrs.evolve(_referral(), referrer_id="carol", code="CAROL123")
        with store.unit_of_work() as uow:
            uow.referrals.update(moved)
            assert uow.referrals.by_referrer(P, "alice") == []
            _assert_same(uow.referrals.by_referrer(P, "carol"), [expected], "in the unit")
        with store.unit_of_work() as uow:  # rolled back
            _assert_same(uow.referrals.by_referrer(P, "alice"), [_referral()], "rolled back")
            assert uow.referrals.by_referrer(P, "carol") == []
        self.commit(store, lambda u: u.referrals.update(moved))
        with store.unit_of_work() as uow:
            _assert_same(uow.referrals.by_referee(P, "bob"), expected, "by_referee")
            _assert_same(uow.referrals.get(expected.referral_id), expected, "get")
            assert uow.referrals.by_referrer(P, "alice") == []
            _assert_same(uow.referrals.by_referrer(P, "carol"), [expected], "by_referrer")

    def test_updating_an_unknown_referral_is_a_store_error(self, store: Store) -> None:
        """referrals.update of a referral never added raises StoreError."""
        with pytest.raises(StoreError), store.unit_of_work() as uow:
            uow.referrals.update(_referral())

    def test_a_code_keeps_its_limits(self, store: Store) -> None:
        """A code with max_uses and expires_at comes back equal, by code and by owner."""
        limited = attrs.evolve(_code(), max_uses=3, expires_at=_at(60, NEW_YORK))
        self.commit(store, lambda u: u.participants.add_code(limited))
        with store.unit_of_work() as uow:
            _assert_same(uow.participants.code_owner(P, "ALICE123"), limited, "code_owner")
            _assert_same(uow.participants.code_of(P, "alice"), limited, "code_of")

    # -- touches --------------------------------------------------------------------------
    def test_touches_are_found_by_visitor_and_participant_in_time_order(self, store: Store) -> None:
        """of_visitor and of_participant list touches by (at, touch id), scoped by program."""
        late = _touch("tch-a", minutes=9)
        early = _touch("tch-z", minutes=1)
        tie = _touch("tch-b", minutes=9)
        mine = _touch("tch-m", visitor_id=None, participant_id="bob", kind="code")
        other = _touch("tch-o", program_id=OTHER)
        self.commit(
            store, *[partial(_add_touch, record=t) for t in (late, early, tie, mine, other)]
        )
        with store.unit_of_work() as uow:
            _assert_same(uow.touches.of_visitor(P, "v-1"), [early, late, tie], "of_visitor")
            _assert_same(uow.touches.of_participant(P, "bob"), [mine], "of_participant")
            _assert_same(uow.touches.of_visitor(OTHER, "v-1"), [other], "other program")
            assert uow.touches.of_visitor(P, "v-unknown") == []

    def test_reads_see_the_units_own_touches(self, store: Store) -> None:
        """A touch added in a unit is listed by that unit before commit."""
        with store.unit_of_work() as uow:
            uow.touches.add(_touch())
            assert uow.touches.of_visitor(P, "v-1") == [_touch()]

    def test_a_known_touch_id_is_a_conflict(self, store: Store) -> None:
        """Adding a touch id twice raises ConcurrencyError; the first stays."""
        self.commit(store, lambda u: u.touches.add(_touch()))
        self.assert_conflict(store, lambda u: u.touches.add(_touch(minutes=8)))
        assert self.read(store, lambda u: u.touches.of_visitor(P, "v-1")) == [_touch()]

    def test_attach_sets_the_participant_on_the_visitors_unclaimed_touches(
        self, store: Store
    ) -> None:
        """attach gives the visitor's touches without a participant to the participant and
        leaves touches another participant claimed alone."""
        free = _touch("tch-1", minutes=1)
        claimed = _touch("tch-2", minutes=2, participant_id="carol")
        elsewhere = _touch("tch-3", minutes=3, visitor_id="v-2")
        self.commit(store, *[partial(_add_touch, record=t) for t in (free, claimed, elsewhere)])
        self.commit(store, lambda u: u.touches.attach(P, "v-1", "bob"))
        with store.unit_of_work() as uow:
            _assert_same(
                uow.touches.of_participant(P, "bob"),
                [attrs.evolve(free, participant_id="bob")],
                "bob",
            )
            _assert_same(uow.touches.of_participant(P, "carol"), [claimed], "carol")
            _assert_same(
                uow.touches.of_visitor(P, "v-1"),
                [attrs.evolve(free, participant_id="bob"), claimed],
                "visitor",
            )

    def test_purge_deletes_touches_before_the_cutoff_only(self, store: Store) -> None:
        """purge removes the program's touches strictly before ``before`` and says how many."""
        old = _touch("tch-old", minutes=1)
        edge = _touch("tch-edge", minutes=5)
        other = _touch("tch-other", minutes=1, program_id=OTHER)
        self.commit(store, *[partial(_add_touch, record=t) for t in (old, edge, other)])
        with store.unit_of_work() as uow:
            assert uow.touches.purge(P, _at(5, TOKYO)) == 1
            uow.commit()
        with store.unit_of_work() as uow:
            _assert_same(uow.touches.of_visitor(P, "v-1"), [edge], "after purge")
            _assert_same(uow.touches.of_visitor(OTHER, "v-1"), [other], "other program")

    def test_forget_deletes_the_participants_touches_only(self, store: Store) -> None:
        """forget removes every touch of one participant in one program and says how many."""
        mine = _touch("tch-1", participant_id="bob")
        also_mine = _touch("tch-2", visitor_id=None, participant_id="bob", kind="code")
        theirs = _touch("tch-3", participant_id="carol")
        elsewhere = _touch("tch-4", participant_id="bob", program_id=OTHER)
        self.commit(
            store, *[partial(_add_touch, record=t) for t in (mine, also_mine, theirs, elsewhere)]
        )
        with store.unit_of_work() as uow:
            assert uow.touches.forget(P, "bob") == 2
            uow.commit()
        with store.unit_of_work() as uow:
            assert uow.touches.of_participant(P, "bob") == []
            _assert_same(uow.touches.of_visitor(P, "v-1"), [theirs], "carol's stays")
            _assert_same(uow.touches.of_participant(OTHER, "bob"), [elsewhere], "other program")

    def test_a_rolled_back_purge_and_attach_are_undone(self, store: Store) -> None:
        """purge and attach in a unit left without commit change nothing."""
        self.commit(store, lambda u: u.touches.add(_touch()))
        before = store.dump()
        with store.unit_of_work() as uow:
            uow.touches.attach(P, "v-1", "bob")
            uow.touches.purge(P, _at(60))
        assert store.dump() == before

    # -- orders, refunds, chargebacks -----------------------------------------------------
    def test_orders_refunds_and_chargebacks_are_found_by_business_id(self, store: Store) -> None:
        """Orders, refunds and chargebacks come back by their business id, None otherwise."""

        def write(uow: UnitOfWork) -> None:
            uow.orders.add(_order())
            uow.orders.add_refund(_refund())
            uow.orders.add_chargeback(_chargeback())

        self.commit(store, write)
        with store.unit_of_work() as uow:
            assert uow.orders.get(P, "order-1") == _order()
            assert uow.orders.refund(P, "refund-1") == _refund()
            assert uow.orders.chargeback(P, "cb-1") == _chargeback()
            assert uow.orders.get(P, "order-2") is None
            assert uow.orders.refund(P, "refund-2") is None
            assert uow.orders.chargeback(P, "cb-2") is None
            assert uow.orders.get(OTHER, "order-1") is None
            assert uow.orders.refund(OTHER, "refund-1") is None
            assert uow.orders.chargeback(OTHER, "cb-1") is None

    def test_orders_update_replaces_referral_and_converted_only(self, store: Store) -> None:
        """orders.update keeps every field but referral_id and converted, which round-trip;
        an unknown order is a StoreError."""
        self.commit(store, lambda u: u.orders.add(_order()))
        changed = attrs.evolve(_order(), referral_id=None, converted=False, digest="other")
        self.commit(store, lambda u: u.orders.update(changed))
        expected = attrs.evolve(_order(), referral_id=None, converted=False)
        _assert_same(self.read(store, lambda u: u.orders.get(P, "order-1")), expected, "get")
        again = attrs.evolve(_order(), referral_id="ref-new")
        self.commit(store, lambda u: u.orders.update(again))
        _assert_same(self.read(store, lambda u: u.orders.get(P, "order-1")), again, "again")
        with pytest.raises(StoreError), store.unit_of_work() as uow:
            uow.orders.update(_order("order-unknown"))

    def test_the_same_order_id_twice_is_a_conflict(self, store: Store) -> None:
        """A known order id raises ConcurrencyError and the first order stays."""
        self.commit(store, lambda u: u.orders.add(_order()))
        self.assert_conflict(store, lambda u: u.orders.add(_order(amount=_jpy("1"))))
        assert self.read(store, lambda u: u.orders.get(P, "order-1")) == _order()

    def test_the_same_refund_id_twice_is_a_conflict(self, store: Store) -> None:
        """A known refund id raises ConcurrencyError and the first refund stays."""
        self.commit(store, lambda u: u.orders.add_refund(_refund()))
        self.assert_conflict(store, lambda u: u.orders.add_refund(_refund(order_id="order-9")))
        assert self.read(store, lambda u: u.orders.refund(P, "refund-1")) == _refund()

    def test_the_same_chargeback_id_twice_is_a_conflict(self, store: Store) -> None:
        """A known chargeback id raises ConcurrencyError and the first chargeback stays."""
        self.commit(store, lambda u: u.orders.add_chargeback(_chargeback()))
        self.assert_conflict(
            store, lambda u: u.orders.add_chargeback(_chargeback(order_id="order-9"))
        )
        assert self.read(store, lambda u: u.orders.chargeback(P, "cb-1")) == _chargeback()

    # -- ledger ---------------------------------------------------------------------------
    def test_add_reward_records_the_reward_and_its_first_entry(self, store: Store) -> None:
        """add_reward stores the reward and its granted entry."""
        reward = _reward()
        self.commit(store, lambda u: u.ledger.add_reward(reward, _granted(reward)))
        with store.unit_of_work() as uow:
            assert uow.ledger.rewards(P, participant_id="alice") == [reward]
            assert uow.ledger.entries([reward.reward_id]) == {reward.reward_id: [_granted(reward)]}

    def test_entries_of_a_reward_named_twice_come_back_once(self, store: Store) -> None:
        """entries() with a reward id repeated gives its entries once, stored and new."""
        a = _reward("rwd-a")
        self.commit(store, lambda u: u.ledger.add_reward(a, _granted(a)))
        approved = _entry("e-9", a, kind=EntryKind.APPROVED, state_after=RewardState.APPROVED)
        with store.unit_of_work() as uow:
            uow.ledger.append([approved])
            got = uow.ledger.entries(["rwd-a", "rwd-a"])
            assert [e.entry_id for e in got["rwd-a"]] == [_granted(a).entry_id, "e-9"]

    def test_entries_come_back_in_append_order(self, store: Store) -> None:
        """entries() gives each reward's entries in append order, across units and calls."""
        a, b = _reward("rwd-b"), _reward("rwd-a", order_id="order-2")
        ea = [
            _granted(a),
            _entry("e-3", a, kind=EntryKind.APPROVED, state_after=RewardState.APPROVED, minutes=9),
            _entry(
                "e-1",
                a,
                kind=EntryKind.REVERSED,
                state_after=RewardState.APPROVED,
                quantity=Decimal("5.00"),
                minutes=5,
            ),
            _entry(
                "e-2",
                a,
                kind=EntryKind.REVERSED,
                state_after=RewardState.REVERSED,
                quantity=Decimal("15.00"),
                minutes=1,
            ),
        ]
        eb = [
            _granted(b),
            _entry("e-0", b, kind=EntryKind.REVERSED, state_after=RewardState.REVERSED),
        ]

        def first(uow: UnitOfWork) -> None:
            uow.ledger.add_reward(a, ea[0])
            uow.ledger.add_reward(b, eb[0])
            uow.ledger.append([ea[1], eb[1]])

        self.commit(store, first)
        self.commit(store, lambda u: u.ledger.append([ea[2]]))
        self.commit(store, lambda u: u.ledger.append([ea[3]]))
        got = self.read(store, lambda u: u.ledger.entries(["rwd-b", "rwd-a"]))
        assert got == {"rwd-b": ea, "rwd-a": eb}

    def test_rewards_of_a_participant_come_oldest_first(self, store: Store) -> None:
        """rewards(participant_id=) lists only that participant's rewards in that program,
        oldest first."""
        rewards = [
            _reward("rwd-z", created_minutes=0),
            _reward("rwd-a", created_minutes=1, order_id=None),
            _reward("rwd-m", created_minutes=2, order_id="order-2"),
        ]
        self.add_rewards(store, *rewards)
        others = [
            _reward("rwd-bob", "bob", created_minutes=3),
            _reward("rwd-other", program_id=OTHER, created_minutes=4),
        ]
        self.add_rewards(store, *others)
        with store.unit_of_work() as uow:
            assert uow.ledger.rewards(P, participant_id="alice") == rewards
            assert uow.ledger.rewards(P, participant_id="bob") == [others[0]]
            assert uow.ledger.rewards(OTHER, participant_id="alice") == [others[1]]
            assert uow.ledger.rewards(P, participant_id="nobody") == []

    def test_rewards_of_an_order_come_oldest_first(self, store: Store) -> None:
        """rewards(order_id=) lists only that order's rewards in that program, oldest first."""
        rewards = [
            _reward("rwd-z", "alice", created_minutes=0),
            _reward("rwd-a", "bob", created_minutes=1),
        ]
        others = [
            _reward("rwd-m", created_minutes=2, order_id="order-2"),
            _reward("rwd-o", program_id=OTHER, created_minutes=3),
        ]
        self.add_rewards(store, *rewards, *others)
        with store.unit_of_work() as uow:
            assert uow.ledger.rewards(P, order_id="order-1") == rewards
            assert uow.ledger.rewards(P, order_id="order-2") == [others[0]]
            assert uow.ledger.rewards(OTHER, order_id="order-1") == [others[1]]
            assert uow.ledger.rewards(P, order_id="order-9") == []

    def test_in_state_orders_by_payable_at_then_reward_id(self, store: Store) -> None:
        """in_state lists rewards by payable_at, ties broken by reward id, whatever the
        insertion order or the datetimes' offsets."""
        due = _at(100)
        rewards = [
            _reward("rwd-c", payable_at=due.astimezone(NEW_YORK)),
            _reward("rwd-late", payable_at=_at(200)),
            _reward("rwd-a", payable_at=due.astimezone(KATHMANDU)),
            _reward("rwd-early", payable_at=_at(50, UTC)),
            _reward("rwd-b", payable_at=due),
        ]
        self.add_rewards(store, *rewards)
        got = self.read(
            store, lambda u: u.ledger.in_state(P, RewardState.PENDING, due_by=None, limit=100)
        )
        assert [r.reward_id for r in got] == ["rwd-early", "rwd-a", "rwd-b", "rwd-c", "rwd-late"]

    def test_in_state_due_by_is_inclusive(self, store: Store) -> None:
        """With due_by, in_state lists only rewards payable at or before it."""
        rewards = [_reward(f"rwd-{m}", payable_at=_at(m)) for m in (10, 20, 30)]
        self.add_rewards(store, *rewards)

        def due(at: datetime) -> list[str]:
            got = self.read(
                store, lambda u: u.ledger.in_state(P, RewardState.PENDING, due_by=at, limit=10)
            )
            return [r.reward_id for r in got]

        assert due(_at(9)) == []
        assert due(_at(20).astimezone(UTC)) == ["rwd-10", "rwd-20"]
        assert due(_at(20) - timedelta(microseconds=1)) == ["rwd-10"]
        assert due(_at(99, NEW_YORK)) == ["rwd-10", "rwd-20", "rwd-30"]

    def test_in_state_returns_at_most_limit_rewards(self, store: Store) -> None:
        """in_state returns the first ``limit`` rewards in its order; limit 0 gives []."""
        rewards = [_reward(f"rwd-{m}", payable_at=_at(m)) for m in (30, 10, 20)]
        self.add_rewards(store, *rewards)

        def first(limit: int) -> list[str]:
            got = self.read(
                store, lambda u: u.ledger.in_state(P, RewardState.PENDING, due_by=None, limit=limit)
            )
            return [r.reward_id for r in got]

        assert first(0) == []
        assert first(1) == ["rwd-10"]
        assert first(2) == ["rwd-10", "rwd-20"]
        assert first(3) == first(50) == ["rwd-10", "rwd-20", "rwd-30"]

    def test_in_state_is_scoped_by_program(self, store: Store) -> None:
        """in_state lists only the given program's rewards."""
        mine, theirs = _reward("rwd-1"), _reward("rwd-2", program_id=OTHER)
        self.add_rewards(store, mine, theirs)
        with store.unit_of_work() as uow:
            assert uow.ledger.in_state(P, RewardState.PENDING, due_by=None, limit=9) == [mine]
            assert uow.ledger.in_state(OTHER, RewardState.PENDING, due_by=None, limit=9) == [theirs]

    def test_of_kind_pages_a_units_rewards_by_creation_up_to_a_cutoff(self, store: Store) -> None:
        """of_kind lists one program's rewards of one unit kind created by the cutoff, by
        (created_at, reward_id), strictly after the cursor, at most ``limit``."""
        points = [
            _reward("rwd-p3", value=Points(3), created_minutes=30),
            _reward("rwd-p1", value=Points(1), created_minutes=10),
            _reward("rwd-p2b", value=Points(2), created_minutes=20),
            _reward("rwd-p2a", value=Points(2, account="miles"), created_minutes=20),
            _reward("rwd-p4", value=Points(4), created_minutes=40),
        ]
        cash = _reward("rwd-cash", created_minutes=15)
        theirs = _reward("rwd-other", value=Points(9), program_id=OTHER, created_minutes=5)
        self.add_rewards(store, *points, cash, theirs)
        cutoff = _at(30)
        with store.unit_of_work() as uow:

            def page(after: tuple[datetime, str] | None, limit: int) -> list[str]:
                found = uow.ledger.of_kind(P, "points", created_by=cutoff, after=after, limit=limit)
                return [r.reward_id for r in found]

            assert page(None, 9) == ["rwd-p1", "rwd-p2a", "rwd-p2b", "rwd-p3"]
            assert page(None, 2) == ["rwd-p1", "rwd-p2a"]
            assert page((_at(20), "rwd-p2a"), 2) == ["rwd-p2b", "rwd-p3"]
            assert page((_at(30), "rwd-p3"), 2) == []
            assert page(None, 0) == []
            cash_found = uow.ledger.of_kind(P, "cash", created_by=cutoff, after=None, limit=9)
            assert cash_found == [cash]
            assert uow.ledger.of_kind(OTHER, "points", created_by=cutoff, after=None, limit=9) == [
                theirs
            ]

    def test_entries_move_a_reward_between_states(self, store: Store) -> None:
        """A reward is listed by in_state under the state_after of its latest entry only."""
        reward, other = _reward("rwd-1"), _reward("rwd-2")
        self.commit(
            store,
            lambda u: u.ledger.add_reward(reward, _granted(reward)),
            lambda u: u.ledger.add_reward(other, _granted(other)),
        )

        def states() -> dict[str, list[str]]:
            with store.unit_of_work() as uow:
                return {
                    state.value: [
                        r.reward_id for r in uow.ledger.in_state(P, state, due_by=None, limit=10)
                    ]
                    for state in (RewardState.PENDING, RewardState.APPROVED, RewardState.REVERSED)
                }

        assert states() == {"pending": ["rwd-1", "rwd-2"], "approved": [], "reversed": []}
        approve = _entry(
            "e-approve",
            reward,
            kind=EntryKind.APPROVED,
            state_after=RewardState.APPROVED,
            cause="settle",
        )
        self.commit(store, lambda u: u.ledger.append([approve]))
        assert states() == {"pending": ["rwd-2"], "approved": ["rwd-1"], "reversed": []}
        partial = _entry(
            "e-partial",
            reward,
            kind=EntryKind.REVERSED,
            state_after=RewardState.APPROVED,
            quantity=Decimal("5.00"),
        )
        self.commit(store, lambda u: u.ledger.append([partial]))
        assert states() == {"pending": ["rwd-2"], "approved": ["rwd-1"], "reversed": []}
        rest = _entry(
            "e-rest",
            reward,
            kind=EntryKind.REVERSED,
            state_after=RewardState.REVERSED,
            quantity=Decimal("15.00"),
        )
        whole = _entry("e-whole", other, kind=EntryKind.REVERSED, state_after=RewardState.REVERSED)
        self.commit(store, lambda u: u.ledger.append([rest, whole]))
        assert states() == {"pending": [], "approved": [], "reversed": ["rwd-1", "rwd-2"]}

    def test_a_rolled_back_state_change_restores_the_state(self, store: Store) -> None:
        """An approval that is rolled back leaves the reward pending and its entries as
        they were."""
        reward = _reward()
        self.commit(store, lambda u: u.ledger.add_reward(reward, _granted(reward)))
        approve = _entry(
            "e-approve", reward, kind=EntryKind.APPROVED, state_after=RewardState.APPROVED
        )
        with store.unit_of_work() as uow:
            uow.ledger.append([approve])
            assert uow.ledger.in_state(P, RewardState.APPROVED, due_by=None, limit=5) == [reward]
        with store.unit_of_work() as uow:
            assert uow.ledger.in_state(P, RewardState.PENDING, due_by=None, limit=5) == [reward]
            assert uow.ledger.in_state(P, RewardState.APPROVED, due_by=None, limit=5) == []
            assert uow.ledger.entries([reward.reward_id]) == {reward.reward_id: [_granted(reward)]}

    def test_appending_to_an_unknown_reward_is_a_store_error(self, store: Store) -> None:
        """append() of an entry whose reward does not exist raises StoreError."""
        ghost = _entry("e-ghost", _reward("rwd-ghost"))
        self.assert_conflict(store, lambda u: u.ledger.append([ghost]), StoreError)
        assert (
            self.read(store, lambda u: u.ledger.entries(["rwd-ghost"])).get("rwd-ghost", []) == []
        )

    def test_a_known_entry_id_is_a_conflict(self, store: Store) -> None:
        """Appending an entry id already in the ledger raises ConcurrencyError; the entries
        stay as they were."""
        reward = _reward()
        self.commit(store, lambda u: u.ledger.add_reward(reward, _granted(reward)))
        again = attrs.evolve(
            _granted(reward), kind=EntryKind.APPROVED, state_after=RewardState.APPROVED
        )
        self.assert_conflict(store, lambda u: u.ledger.append([again]))
        with store.unit_of_work() as uow:
            assert uow.ledger.entries([reward.reward_id]) == {reward.reward_id: [_granted(reward)]}
            assert uow.ledger.in_state(P, RewardState.PENDING, due_by=None, limit=5) == [reward]

    def test_a_known_reward_id_is_a_conflict(self, store: Store) -> None:
        """add_reward of a known reward id raises ConcurrencyError; the first reward stays."""
        reward = _reward()
        self.commit(store, lambda u: u.ledger.add_reward(reward, _granted(reward)))
        twin = _reward(value=Points(5))
        self.assert_conflict(store, lambda u: u.ledger.add_reward(twin, _entry("e-twin", twin)))
        with store.unit_of_work() as uow:
            assert uow.ledger.rewards(P, participant_id="alice") == [reward]
            assert uow.ledger.entries([reward.reward_id]) == {reward.reward_id: [_granted(reward)]}

    # -- counters -------------------------------------------------------------------------
    def test_a_counter_never_written_reads_as_zero(self, store: Store) -> None:
        """counters.get returns 0 for every key never written."""
        keys: list[CounterKey] = [(P, "referrals", "alice"), (P, "spend", ""), (OTHER, "x", "y")]
        got = self.read(store, lambda u: u.counters.get(keys))
        assert got == dict.fromkeys(keys, Decimal(0))
        assert all(type(v) is Decimal for v in got.values())

    def test_counter_deltas_add_up_exactly(self, store: Store) -> None:
        """Positive and negative Decimal deltas add up exactly, with no float rounding."""
        cents: CounterKey = (P, "spend", "alice")
        big: CounterKey = (P, "revenue", "")
        other: CounterKey = (P, "spend", "bob")
        for _ in range(3):
            self.commit(store, lambda u: u.counters.add(cents, Decimal("0.01")))
        self.commit(
            store,
            lambda u: u.counters.add(big, Decimal("1234567890.123456")),
            lambda u: u.counters.add(big, Decimal("-0.000001")),
            lambda u: u.counters.add(other, Decimal("-7.5")),
        )
        got = self.read(store, lambda u: u.counters.get([cents, big, other]))
        assert got == {
            cents: Decimal("0.03"),
            big: Decimal("1234567890.123455"),
            other: Decimal("-7.5"),
        }
        assert all(type(v) is Decimal for v in got.values())
        self.commit(store, lambda u: u.counters.add(cents, Decimal("-0.03")))
        assert self.read(store, lambda u: u.counters.get([cents])) == {cents: Decimal(0)}

    def test_a_rolled_back_counter_update_is_undone(self, store: Store) -> None:
        """Counter updates of a rolled-back unit are undone; the committed value stays."""
        key: CounterKey = (P, "referrals", "alice")
        fresh: CounterKey = (P, "referrals", "bob")
        self.commit(store, lambda u: u.counters.add(key, Decimal(2)))
        with store.unit_of_work() as uow:
            uow.counters.add(key, Decimal(5))
            uow.counters.add(key, Decimal(-1))
            uow.counters.add(fresh, Decimal(1))
            assert uow.counters.get([key, fresh]) == {key: Decimal(6), fresh: Decimal(1)}
        got = self.read(store, lambda u: u.counters.get([key, fresh]))
        assert got == {key: Decimal(2), fresh: Decimal(0)}

    def test_counters_read_right_after_a_batch_prefetch_and_a_flush(self, store: Store) -> None:
        """A store that prefetches a batch's counters (the optional ``prefetch``) reads them
        right through a mid-unit flush (an outbox read flushes the buffered writes): a
        counter of a loaded subject that had no row, added to, flushed and added to
        again, reads as the sum."""
        key: CounterKey = (P, "referrals", "alice")
        other: CounterKey = (P, "spend", "alice")
        self.commit(store, lambda u: u.counters.add(other, Decimal(4)))
        with store.unit_of_work() as uow:
            prefetch = getattr(uow, "prefetch", None)
            if prefetch is not None:
                prefetch(P, counter_subjects=["alice"])
            uow.counters.add(key, Decimal(1))
            uow.outbox.pending(10)  # flushes a store that buffers its writes
            uow.counters.add(key, Decimal(2))
            uow.counters.add(other, Decimal(1))
            assert uow.counters.get([key, other]) == {key: Decimal(3), other: Decimal(5)}
            uow.outbox.pending(10)
            assert uow.counters.get([key, other]) == {key: Decimal(3), other: Decimal(5)}
            uow.commit()
        got = self.read(store, lambda u: u.counters.get([key, other]))
        assert got == {key: Decimal(3), other: Decimal(5)}

    # -- outbox ---------------------------------------------------------------------------
    def test_pending_lists_notifications_oldest_first_up_to_limit(self, store: Store) -> None:
        """pending(limit) returns up to ``limit`` undelivered notifications, oldest first;
        limit 0 gives []."""
        notes = [_notification(f"ntf-{c}", minutes=m) for c, m in (("c", 1), ("a", 2), ("b", 3))]
        self.commit(store, lambda u: u.outbox.add(notes[:2]))
        self.commit(store, lambda u: u.outbox.add(notes[2:]))
        with store.unit_of_work() as uow:
            assert uow.outbox.pending(0) == []
            assert uow.outbox.pending(1) == notes[:1]
            assert uow.outbox.pending(2) == notes[:2]
            assert uow.outbox.pending(10) == notes

    def test_mark_delivered_removes_a_notification_from_pending(self, store: Store) -> None:
        """A delivered notification is no longer pending; the others still are."""
        notes = [_notification(f"ntf-{i}", minutes=i) for i in range(3)]
        self.commit(store, lambda u: u.outbox.add(notes))
        self.commit(store, lambda u: u.outbox.mark_delivered("ntf-1", _at(10)))
        assert self.read(store, lambda u: u.outbox.pending(10)) == [notes[0], notes[2]]

    def test_mark_failed_keeps_a_notification_pending(self, store: Store) -> None:
        """A failed delivery attempt leaves the notification pending, in its place."""
        notes = [_notification(f"ntf-{i}", minutes=i) for i in range(2)]
        self.commit(store, lambda u: u.outbox.add(notes))
        self.commit(store, lambda u: u.outbox.mark_failed("ntf-0", _at(10), "timeout"))
        self.commit(store, lambda u: u.outbox.mark_failed("ntf-0", _at(11), "refused"))
        assert self.read(store, lambda u: u.outbox.pending(10)) == notes
        self.commit(store, lambda u: u.outbox.mark_delivered("ntf-0", _at(12)))
        assert self.read(store, lambda u: u.outbox.pending(10)) == notes[1:]

    def test_a_known_notification_id_is_a_conflict(self, store: Store) -> None:
        """Queueing a known notification id raises ConcurrencyError; the first stays."""
        first = _notification()
        self.commit(store, lambda u: u.outbox.add([first]))
        self.assert_conflict(store, lambda u: u.outbox.add([_notification(minutes=5)]))
        pending = self.read(store, lambda u: u.outbox.pending(10))
        _assert_same(pending, [first], "pending")

    # -- delivery: retries and dead letters ------------------------------------------------
    def _outbox_state(self, store: Store) -> dict[str, OutboxStatus]:
        return dict(store.dump()["outbox_status"])

    def test_due_lists_retries_due_first_then_never_attempted_in_added_order(
        self, store: Store
    ) -> None:
        """due(at, limit) gives failed notifications whose retry time is at or before
        ``at`` (by that time, then added order), then the never-attempted ones in added
        order, each with its attempts so far; up to ``limit``, and [] for limit 0."""
        notes = [_notification(f"ntf-{i}", minutes=i) for i in range(4)]
        self.commit(store, lambda u: u.outbox.add(notes))
        self.commit(
            store,
            lambda u: u.outbox.mark_failed("ntf-2", _at(10), "timeout", _at(30)),
            lambda u: u.outbox.mark_failed("ntf-0", _at(10), "timeout", _at(20)),
            lambda u: u.outbox.mark_failed("ntf-0", _at(21), "refused", _at(30)),
            lambda u: u.outbox.mark_failed("ntf-3", _at(10), "timeout", _at(25)),
        )

        def due(minutes: int, limit: int = 10) -> list[tuple[str, int]]:
            got = self.read(store, lambda u: u.outbox.due(_at(minutes, NEW_YORK), limit))
            return [(n.notification_id, attempts) for n, attempts in got]

        assert due(24) == [("ntf-1", 0)]
        assert due(25) == [("ntf-3", 1), ("ntf-1", 0)]
        assert due(30) == [("ntf-3", 1), ("ntf-0", 2), ("ntf-2", 1), ("ntf-1", 0)]
        assert due(30, 2) == [("ntf-3", 1), ("ntf-0", 2)]
        assert due(30, 0) == []
        got = self.read(store, lambda u: u.outbox.due(_at(30), 10))
        _assert_same([n for n, _ in got], [notes[3], notes[0], notes[2], notes[1]], "due")
        # Failed ones stay pending, in added order, whether due or not.
        assert self.read(store, lambda u: u.outbox.pending(10)) == notes

    def test_mark_failed_without_a_retry_time_is_due_again_at_once(self, store: Store) -> None:
        """mark_failed(..., retry_at=None) records the attempt and leaves the notification
        due from the attempt's time on."""
        self.commit(store, lambda u: u.outbox.add([_notification()]))
        self.commit(store, lambda u: u.outbox.mark_failed("ntf-1", _at(10), "boom"))
        assert self.read(store, lambda u: u.outbox.due(_at(9), 10)) == []
        assert self.read(store, lambda u: u.outbox.due(_at(10), 10)) == [(_notification(), 1)]
        status = self._outbox_state(store)["ntf-1"]
        assert (status.attempts, status.last_error, status.next_attempt_at) == (1, "boom", _at(10))

    def test_mark_dead_moves_a_notification_to_the_dead_letters(self, store: Store) -> None:
        """A notification marked dead is neither pending nor due; dead(limit) lists it with
        its attempts, last error and time of death, by that time then added order."""
        notes = [_notification(f"ntf-{i}", minutes=i) for i in range(3)]
        self.commit(store, lambda u: u.outbox.add(notes))
        self.commit(
            store,
            lambda u: u.outbox.mark_failed("ntf-2", _at(10), "timeout", _at(11)),
            lambda u: u.outbox.mark_dead("ntf-2", _at(11), "gone"),
            lambda u: u.outbox.mark_dead("ntf-1", _at(11), "refused"),
            lambda u: u.outbox.mark_dead("ntf-0", _at(12, NEW_YORK), "410"),
        )
        assert self.read(store, lambda u: u.outbox.pending(10)) == []
        assert self.read(store, lambda u: u.outbox.due(_at(99), 10)) == []
        dead = self.read(store, lambda u: u.outbox.dead(10))
        _assert_same(
            dead,
            [
                DeadLetter(notes[1], 1, "refused", _at(11)),
                DeadLetter(notes[2], 2, "gone", _at(11)),
                DeadLetter(notes[0], 1, "410", _at(12)),
            ],
            "dead",
        )
        assert [
            d.notification.notification_id for d in self.read(store, lambda u: u.outbox.dead(1))
        ] == ["ntf-1"]
        assert self.read(store, lambda u: u.outbox.dead(0)) == []
        status = self._outbox_state(store)["ntf-2"]
        assert status == OutboxStatus(None, 2, "gone", None, _at(11))

    def test_revive_makes_dead_letters_due_again_with_fresh_attempts(self, store: Store) -> None:
        """revive(ids) makes those dead letters pending and never attempted (the last error
        kept) and returns how many; unknown, pending, delivered and repeated ids are
        ignored."""
        notes = [_notification(f"ntf-{i}", minutes=i) for i in range(4)]
        self.commit(store, lambda u: u.outbox.add(notes))
        self.commit(
            store,
            lambda u: u.outbox.mark_dead("ntf-0", _at(10), "gone"),
            lambda u: u.outbox.mark_dead("ntf-1", _at(10), "gone"),
            lambda u: u.outbox.mark_delivered("ntf-3", _at(10)),
        )
        with store.unit_of_work() as uow:
            revived = uow.outbox.revive(["ntf-1", "ntf-1", "ntf-2", "ntf-3", "nope"])
            uow.commit()
        assert revived == 1
        got = self.read(store, lambda u: u.outbox.due(_at(10), 10))
        assert [(n.notification_id, a) for n, a in got] == [("ntf-1", 0), ("ntf-2", 0)]
        assert [
            d.notification.notification_id for d in self.read(store, lambda u: u.outbox.dead(9))
        ] == ["ntf-0"]
        assert self._outbox_state(store)["ntf-1"] == OutboxStatus(None, 0, "gone")
        assert self._outbox_state(store)["ntf-3"].delivered_at == _at(10)
        assert self.read(store, lambda u: u.outbox.revive([])) == 0

    def test_a_delivery_is_never_undone_by_a_late_failure(self, store: Store) -> None:
        """Once delivered, a notification stays delivered: a slower dispatcher's
        mark_failed or mark_dead is ignored, and a dead letter a slower dispatcher delivered
        becomes delivered. Unknown ids are ignored."""
        notes = [_notification(f"ntf-{i}", minutes=i) for i in range(2)]
        self.commit(store, lambda u: u.outbox.add(notes))
        self.commit(
            store,
            lambda u: u.outbox.mark_delivered("ntf-0", _at(10)),
            lambda u: u.outbox.mark_failed("ntf-0", _at(11), "late", _at(12)),
            lambda u: u.outbox.mark_dead("ntf-0", _at(11), "late"),
            lambda u: u.outbox.mark_dead("ntf-1", _at(10), "gone"),
            lambda u: u.outbox.mark_failed("ntf-1", _at(11), "late", _at(12)),
            lambda u: u.outbox.mark_delivered("ntf-1", _at(13)),
            lambda u: u.outbox.mark_delivered("ntf-9", _at(13)),
            lambda u: u.outbox.mark_failed("ntf-9", _at(13), "x"),
            lambda u: u.outbox.mark_dead("ntf-9", _at(13), "x"),
        )
        state = self._outbox_state(store)
        assert state["ntf-0"] == OutboxStatus(_at(10), 1, None)
        assert state["ntf-1"] == OutboxStatus(_at(13), 2, "gone")
        assert self.read(store, lambda u: u.outbox.dead(10)) == []
        assert self.read(store, lambda u: u.outbox.due(_at(99), 10)) == []
        assert "ntf-9" not in state

    def test_rolled_back_delivery_marks_leave_the_outbox_as_it_was(self, store: Store) -> None:
        """mark_failed, mark_dead and revive in a unit that rolls back change nothing."""
        notes = [_notification(f"ntf-{i}", minutes=i) for i in range(3)]
        self.commit(
            store,
            lambda u: u.outbox.add(notes),
            lambda u: u.outbox.mark_dead("ntf-2", _at(5), "gone"),
        )
        before = store.dump()
        with store.unit_of_work() as uow:
            uow.outbox.mark_failed("ntf-0", _at(10), "timeout", _at(20))
            uow.outbox.mark_dead("ntf-1", _at(10), "gone")
            assert uow.outbox.revive(["ntf-2"]) == 1
            assert [n.notification_id for n, _ in uow.outbox.due(_at(10), 9)] == ["ntf-2"]
        assert store.dump() == before
        got = self.read(store, lambda u: u.outbox.due(_at(10), 9))
        assert [n.notification_id for n, _ in got] == ["ntf-0", "ntf-1"]

    # -- dump -----------------------------------------------------------------------------
    def test_dump_names_every_table(self, store: Store) -> None:
        """dump() returns a list for every table of the reference store, even when empty."""
        dump = store.dump()
        missing = [name for name in TABLES if name not in dump]
        assert not missing, f"dump() lacks tables {missing}"
        assert all(isinstance(dump[name], list) for name in TABLES)

    def test_dump_holds_every_committed_record(self, store: Store) -> None:
        """After a commit, dump() holds each record in its table (and the email as
        ((program id, participant id), email))."""
        self.commit(store, self.write_one_of_each)
        dump = store.dump()
        reward = _reward()
        expected = {
            "events": _event_record(),
            "programs": _program_record(),
            "participants": _participant(),
            "codes": _code(),
            "referrals": _referral(),
            "orders": _order(),
            "refunds": _refund(),
            "chargebacks": _chargeback(),
            "rewards": reward,
            "entries": _granted(reward),
            "outbox": _notification(),
            "personal_data": ((P, "bob"), "bob@example.com"),
            "touches": _touch(),
        }
        for table, record in expected.items():
            assert dump[table] == [record], f"dump()[{table!r}] = {dump[table]!r}"
        assert dump["counters"], "dump()['counters'] is empty"
        assert dump["outbox_status"], "dump()['outbox_status'] is empty"

    def test_dump_is_stable(self, store: Store) -> None:
        """Two dumps of an unchanged store are equal, list order included."""
        self.commit(store, self.write_one_of_each)
        assert store.dump() == store.dump()

    def test_a_rolled_back_unit_leaves_the_dump_unchanged(self, store: Store) -> None:
        """dump() after a rolled-back unit that wrote every table equals dump() before."""
        self.commit(store, lambda u: u.counters.add((P, "x", ""), Decimal(1)))
        before = store.dump()
        with store.unit_of_work() as uow:
            self.write_one_of_each(uow)
            uow.outbox.mark_failed("ntf-1", _at(1), "boom")
        assert store.dump() == before
        with store.unit_of_work() as uow:
            self.write_one_of_each(uow)
            uow.outbox.mark_delivered("ntf-1", _at(1))
            uow.rollback()
        assert store.dump() == before

    # -- round-trips ----------------------------------------------------------------------
    def test_every_record_round_trips_exactly(self, store: Store) -> None:
        """Every kind of record comes back equal, types and mapping fields included."""
        self.commit(store, self.write_one_of_each)
        anonymous = _participant("walk-in", signed_up=False)
        no_order = _reward("rwd-2", order_id=None, value=Points(7, account="miles"))
        self.commit(
            store,
            lambda u: u.participants.put(anonymous),
            lambda u: u.ledger.add_reward(no_order, _granted(no_order)),
        )
        reward = _reward()
        with store.unit_of_work() as uow:
            got: dict[str, tuple[Any, Any]] = {
                "event": (uow.events.get(P, "evt-1"), _event_record()),
                "program": (uow.programs.get(P, 1), _program_record()),
                "participant": (uow.participants.get(P, "bob"), _participant()),
                "anonymous": (uow.participants.get(P, "walk-in"), anonymous),
                "code": (uow.participants.code_owner(P, "ALICE123"), _code()),
                "referral": (uow.referrals.by_referee(P, "bob"), _referral()),
                "order": (uow.orders.get(P, "order-1"), _order()),
                "refund": (uow.orders.refund(P, "refund-1"), _refund()),
                "chargeback": (uow.orders.chargeback(P, "cb-1"), _chargeback()),
                "rewards": (uow.ledger.rewards(P, participant_id="alice"), [reward, no_order]),
                "entries": (
                    uow.ledger.entries([reward.reward_id, no_order.reward_id]),
                    {
                        reward.reward_id: [_granted(reward)],
                        no_order.reward_id: [_granted(no_order)],
                    },
                ),
                "notification": (uow.outbox.pending(1), [_notification()]),
                "email": (uow.participants.email_of(P, "bob"), "bob@example.com"),
            }
        for name, (actual, expected) in got.items():
            _assert_same(actual, expected, name)

    def test_every_reward_value_type_round_trips(self, store: Store) -> None:
        """Rewards of every value type (JPY and BHD money included) and their entries come
        back equal."""
        rewards = [
            _reward(f"rwd-{i:02}", value=value, created_minutes=i, order_id=f"order-{i}")
            for i, value in enumerate(REWARD_VALUES)
        ]

        def write(uow: UnitOfWork) -> None:
            for reward in rewards:
                uow.ledger.add_reward(reward, _granted(reward))

        self.commit(store, write)
        with store.unit_of_work() as uow:
            _assert_same(uow.ledger.rewards(P, participant_id="alice"), rewards, "rewards")
            _assert_same(
                uow.ledger.entries([r.reward_id for r in rewards]),
                {r.reward_id: [_granted(r)] for r in rewards},
                "entries",
            )
            for reward in rewards:
                assert reward.order_id is not None
                _assert_same(
                    uow.ledger.rewards(P, order_id=reward.order_id), [reward], reward.reward_id
                )

    def test_every_event_type_round_trips_in_the_event_log(self, store: Store) -> None:
        """Event records of every event type, with metadata, line items and an outcome with
        grants, reversals and decisions, come back equal."""
        records = [
            _event_record(
                event.event_id,
                event=event,
                outcome=_rich_outcome(event),
                digest=f"d-{event.event_id}",
            )
            for event in _events()
        ]
        self.commit(store, *[partial(_add_event, record=r) for r in records])
        with store.unit_of_work() as uow:
            for record in records:
                _assert_same(uow.events.get(P, record.event_id), record, record.event_id)

    def test_aware_datetimes_come_back_aware_and_equal(self, store: Store) -> None:
        """Datetimes written with any UTC offset come back aware, at the same instant."""
        self.commit(store, self.write_one_of_each)
        records = [
            _event_record(event.event_id, event=event, outcome=_rich_outcome(event))
            for event in _events()
        ]
        self.commit(store, *[partial(_add_event, record=r) for r in records])
        reward = _reward()
        with store.unit_of_work() as uow:
            pairs: list[tuple[Any, Any]] = [(uow.events.get(P, r.event_id), r) for r in records] + [
                (uow.programs.get(P, 1), _program_record()),
                (uow.participants.get(P, "bob"), _participant()),
                (uow.participants.code_of(P, "alice"), _code()),
                (uow.referrals.by_referee(P, "bob"), _referral()),
                (uow.orders.get(P, "order-1"), _order()),
                (uow.orders.refund(P, "refund-1"), _refund()),
                (uow.orders.chargeback(P, "cb-1"), _chargeback()),
                (uow.ledger.rewards(P, order_id="order-1"), [reward]),
                (uow.ledger.entries([reward.reward_id]), {reward.reward_id: [_granted(reward)]}),
                (uow.outbox.pending(1), [_notification()]),
            ]
        for i, (actual, expected) in enumerate(pairs):
            _assert_same(actual, expected, f"record {i}", offsets=True)

    # -- the engine -----------------------------------------------------------------------
    def test_an_engine_run_gives_the_reference_ledger(self, store: Store) -> None:
        """A double-sided run (sign-ups with a code, purchases, settle, a partial refund)
        gives the same rewards, entries, balances and outbox as on InMemoryStore."""
        mine, reference = _engine_run(store), _engine_run(InMemoryStore())
        assert mine.reasons == reference.reasons
        got, want = store.dump(), reference.engine.store.dump()
        assert _by_id(got["rewards"], "reward_id") == _by_id(want["rewards"], "reward_id")
        assert _by_id(got["entries"], "entry_id") == _by_id(want["entries"], "entry_id")
        assert _by_id(got["outbox"], "notification_id") == _by_id(want["outbox"], "notification_id")
        for pid in ("alice", "bob", "carol"):
            assert mine.engine.balance(pid) == reference.engine.balance(pid), pid
            assert mine.engine.rewards_for(pid) == reference.engine.rewards_for(pid), pid
        alice = mine.engine.balance("alice")[Unit("cash", "USD")]
        assert (alice.pending, alice.available, alice.lifetime) == (
            Decimal("20.00"),
            Decimal("15.00"),
            Decimal("35.00"),
        )

    def test_a_reattribution_and_an_erasure_give_the_reference_records(self, store: Store) -> None:
        """The run above, then an operator moves carol's referral to dave, gives erin (who
        had no referrer) one, and erases bob: the same referrals, orders, rewards, entries,
        outbox, counters and event log as on InMemoryStore."""
        mine, reference = _engine_run(store), _engine_run(InMemoryStore())
        for run in (mine, reference):
            _reattribute_and_erase(run.engine)
        got, want = dict(store.dump()), dict(reference.engine.store.dump())
        # codes are random: compare referrals without them, and the log by its erasure
        got["referrals"] = [attrs.evolve(r, code="") for r in got["referrals"]]
        want["referrals"] = [attrs.evolve(r, code="") for r in want["referrals"]]
        for dump in (got, want):
            dump["events"] = [
                (r.event_id, getattr(r.event, "email", None), dict(r.event.metadata))
                for r in dump["events"]
            ]
        assert sorted(got["events"]) == sorted(want["events"])
        for table, key in (
            ("referrals", "referral_id"),
            ("orders", "order_id"),
            ("rewards", "reward_id"),
            ("entries", "entry_id"),
            ("outbox", "notification_id"),
        ):
            assert _by_id(got[table], key) == _by_id(want[table], key), table
        for pid in ("alice", "bob", "carol", "dave", "erin"):
            assert mine.engine.balance(pid) == reference.engine.balance(pid), pid
        with store.unit_of_work() as uow:
            moved = uow.referrals.by_referrer(_E2E, "dave")
            assert sorted(r.referee_id for r in moved) == ["carol", "erin"]
            assert [r.referee_id for r in uow.referrals.by_referrer(_E2E, "alice")] == ["bob"]
            logged = uow.events.get(_E2E, "e-signup-bob")
            assert logged is not None
            assert isinstance(logged.event, Signup)
            assert logged.event.email is not None
            assert logged.event.email.endswith("@erased.invalid")
        keys = [(_E2E, "referrer.successful_referrals", who) for who in ("alice", "dave")]
        with store.unit_of_work() as uow:
            assert uow.counters.get(keys) == {keys[0]: Decimal(1), keys[1]: Decimal(2)}

    # -- payouts and the ledger's audit columns -------------------------------------------
    def test_a_payout_is_found_by_id_and_listed_while_open(self, store: Store) -> None:
        """payouts.get returns an added payout; open() lists pending and failed payouts of
        one participant or of all, oldest first, scoped by program."""
        first, second = _payout("pay-1", minutes=0), _payout("pay-2", "bob", minutes=5)
        theirs = _payout("pay-3", program_id=OTHER)
        self.commit(store, *(partial(_add_payout, p) for p in (second, first, theirs)))
        with store.unit_of_work() as uow:
            _assert_same(uow.payouts.get(P, "pay-1"), first, "payout")
            assert uow.payouts.get(OTHER, "pay-1") is None
            assert uow.payouts.get(P, "pay-none") is None
            assert [p.payout_id for p in uow.payouts.open(P, None, 10)] == ["pay-1", "pay-2"]
            assert [p.payout_id for p in uow.payouts.open(P, "bob", 10)] == ["pay-2"]
            assert [p.payout_id for p in uow.payouts.open(P, None, 1)] == ["pay-1"]

    def test_update_changes_a_payouts_status_and_paid_ones_leave_open(self, store: Store) -> None:
        """update() replaces status, attempts, error and updated_at; a paid payout is no
        longer open, a failed one still is."""
        payout = _payout("pay-1")
        self.commit(store, partial(_add_payout, payout))
        failed = attrs.evolve(
            payout, status=PayoutStatus.FAILED, attempts=1, error="bank down", updated_at=_at(9)
        )
        self.commit(store, lambda u: u.payouts.update(failed))
        with store.unit_of_work() as uow:
            _assert_same(uow.payouts.get(P, "pay-1"), failed, "failed payout")
            assert [p.payout_id for p in uow.payouts.open(P, None, 5)] == ["pay-1"]
        paid = attrs.evolve(failed, status=PayoutStatus.PAID, attempts=2, error=None)
        self.commit(store, lambda u: u.payouts.update(paid))
        with store.unit_of_work() as uow:
            assert uow.payouts.get(P, "pay-1") == paid
            assert uow.payouts.open(P, None, 5) == []

    def test_a_known_payout_id_is_a_conflict(self, store: Store) -> None:
        """Recording a payout id twice raises ConcurrencyError and keeps the first."""
        payout = _payout("pay-1")
        self.commit(store, partial(_add_payout, payout))
        self.assert_conflict(
            store, lambda u: u.payouts.add(attrs.evolve(payout, netted=_usd("1.00")))
        )
        with store.unit_of_work() as uow:
            assert uow.payouts.get(P, "pay-1") == payout

    def test_updating_an_unknown_payout_is_a_store_error(self, store: Store) -> None:
        """update() of a payout id never added raises StoreError."""
        with store.unit_of_work() as uow:
            with pytest.raises(StoreError):
                uow.payouts.update(_payout("pay-missing"))
            assert uow.payouts.get(P, "pay-missing") is None

    def test_a_rolled_back_payout_is_not_recorded(self, store: Store) -> None:
        """A payout added in a unit that is not committed leaves no trace."""
        with store.unit_of_work() as uow:
            uow.payouts.add(_payout("pay-1"))
            assert uow.payouts.get(P, "pay-1") is not None
        with store.unit_of_work() as uow:
            assert uow.payouts.get(P, "pay-1") is None
        assert store.dump()["payouts"] == []

    def test_entry_actor_and_reward_item_round_trip(self, store: Store) -> None:
        """An entry's actor and a per-item reward's item come back as written."""
        reward = attrs.evolve(_reward("rwd-item"), item="sku-hat")
        held = attrs.evolve(
            _entry("e-held", reward, kind=EntryKind.HELD, state_after=RewardState.HELD),
            cause="review until 2026-04-01T00:00:00+00:00",
            actor="ops@example.com",
        )
        self.commit(
            store,
            lambda u: u.ledger.add_reward(reward, _granted(reward)),
            lambda u: u.ledger.append([held]),
        )
        with store.unit_of_work() as uow:
            _assert_same(uow.ledger.rewards(P, participant_id="alice"), [reward], "rewards")
            _assert_same(
                uow.ledger.entries([reward.reward_id]),
                {reward.reward_id: [_granted(reward), held]},
                "entries",
            )
            assert uow.ledger.in_state(P, RewardState.HELD, due_by=None, limit=5) == [reward]

    def test_exchange_rates_of_orders_and_rewards_round_trip(self, store: Store) -> None:
        """The exchange rate (exact decimal and date) of a converted order and its reward
        come back as written, and records without one come back with None."""
        rate = Rate(Decimal("0.00671234567"), date(2026, 2, 27))
        order = attrs.evolve(_order("order-fx"), exchange_rate=rate)
        reward = attrs.evolve(_reward("rwd-fx", order_id="order-fx"), exchange_rate=rate)
        plain = _reward("rwd-plain", order_id="order-fx")
        self.commit(
            store,
            lambda u: u.orders.add(order),
            lambda u: u.ledger.add_reward(reward, _granted(reward)),
            lambda u: u.ledger.add_reward(plain, _granted(plain)),
        )
        with store.unit_of_work() as uow:
            found = uow.orders.get(P, "order-fx")
            assert found == order
            assert found is not None
            assert found.exchange_rate == rate
            rewards = uow.ledger.rewards(P, order_id="order-fx")
            _assert_same(rewards, [reward, plain], "rewards")
            assert [r.exchange_rate for r in rewards] == [rate, None]
        dumped = store.dump()
        assert order in dumped["orders"]

    def test_an_engine_payout_run_gives_the_reference_ledger(self, store: Store) -> None:
        """Holds, a rejection, a failed then retried payout and a clawback give the same
        rewards, entries, payouts, outbox and balances as on InMemoryStore."""
        mine, reference = _payout_run(store), _payout_run(InMemoryStore())
        got, want = store.dump(), reference.store.dump()
        for table, key in (
            ("rewards", "reward_id"),
            ("entries", "entry_id"),
            ("outbox", "notification_id"),
            ("payouts", "payout_id"),
        ):
            assert _by_id(got[table], key) == _by_id(want[table], key), table
        for pid in ("alice", "bob", "carol"):
            assert mine.balance(pid) == reference.balance(pid), pid
        alice = mine.balance("alice")[Unit("cash", "USD")]
        assert (alice.paid, alice.owed) == (Decimal("10.00"), Decimal("10.00"))


def _payout(
    payout_id: str,
    participant_id: str = "alice",
    *,
    program_id: str = P,
    minutes: int = 0,
) -> Payout:
    return Payout(
        payout_id=payout_id,
        program_id=program_id,
        participant_id=participant_id,
        amount=_usd("12.50"),
        kind="cash",
        reward_ids=("rwd-1", "rwd-2"),
        netted=_usd("0.00"),
        created_at=_at(minutes),
    )


def _add_payout(payout: Payout, uow: UnitOfWork) -> None:
    uow.payouts.add(payout)


class _FlakyFulfiller:
    """Fails its first call, then succeeds."""

    def __init__(self) -> None:
        self.calls = 0

    def fulfil(self, payout: Payout) -> None:
        self.calls += 1
        if self.calls == 1:
            raise ConnectionError("first call fails")


def _payout_run(store: Store) -> Engine:
    start = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    program = Program(
        id=P,
        effective_at=start - timedelta(days=1),
        currency="USD",
        policies=[DoubleSided(referrer=Cash(_usd("20.00")), referee=Credit(_usd("5.00")))],
        hold=relativedelta(days=30),
    )
    engine = Engine(
        program,
        store,
        clock=ManualClock(start),
        fulfiller=_FlakyFulfiller(),
        code_factory=iter(["ALICE1", "ALICE2"]).__next__,
    )
    code = engine.issue_code("alice")
    for who in ("bob", "carol"):
        engine.handle(Signup(event_id=f"s-{who}", participant_id=who, code=code, at=start))
        engine.handle(
            Purchase(
                event_id=f"p-{who}",
                participant_id=who,
                order_id=f"o-{who}",
                amount=_usd("50.00"),
                at=start,
            )
        )
    carol = engine.referral_of("carol")
    assert carol is not None
    engine.hold_referral(carol.referral_id, reason="review", actor="ops", now=start)
    engine.reject_referral(carol.referral_id, actor="ops", fraud=True, now=start)
    later = start + timedelta(days=31)
    engine.settle(later)
    engine.payout(now=later)  # the first fulfilment fails
    engine.payout(now=later)  # retried under the same ids
    engine.handle(
        Refund(
            event_id="r-bob",
            refund_id="r-bob",
            order_id="o-bob",
            amount=_usd("25.00"),
            at=later,
        )
    )
    return engine


@attrs.frozen
class _Run:
    engine: Engine
    reasons: list[tuple[str, ...]]


_E2E = "contract-e2e"


def _reattribute_and_erase(engine: Engine) -> None:
    """After ``_engine_run``: carol's referral moves to dave, erin gets one, bob is erased."""
    at = datetime(2026, 4, 10, tzinfo=UTC)
    engine.issue_code("dave")
    engine.handle(Signup(event_id="e-signup-erin", participant_id="erin", at=at))
    engine.handle(
        Purchase(
            event_id="e-order-erin",
            participant_id="erin",
            order_id="order-erin",
            amount=_usd("30.00"),
            at=at + timedelta(hours=1),
        )
    )
    engine.reattribute("carol", "dave", actor="ops", reason="contract", now=at)
    engine.reattribute("erin", "dave", actor="ops", reason="contract", now=at)
    engine.reattribute("carol", "dave", actor="ops", reason="contract", now=at)  # a retry
    engine.erase_participant("bob")


def _engine_run(store: Store) -> _Run:
    """Run a short double-sided program on ``store``."""
    start = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
    program = Program(
        id="contract-e2e",
        version=1,
        effective_at=start - timedelta(days=1),
        currency="USD",
        policies=[DoubleSided(referrer=Cash(_usd("20.00")), referee=Credit(_usd("10.00")))],
        hold=relativedelta(days=30),
    )
    engine = Engine(program, store, clock=ManualClock(start))
    code = engine.issue_code("alice")
    events: list[Event] = [
        Signup(
            event_id="e-signup-bob",
            participant_id="bob",
            at=start,
            code=code,
            email="bob@example.com",
        ),
        Signup(event_id="e-signup-carol", participant_id="carol", at=start, code=code.lower()),
        Purchase(
            event_id="e-order-bob",
            participant_id="bob",
            order_id="order-bob",
            amount=_usd("80.00"),
            at=start + timedelta(hours=2),
            items=(LineItem(sku="plan", unit_price=_usd("80.00")),),
        ),
        Purchase(
            event_id="e-order-carol",
            participant_id="carol",
            order_id="order-carol",
            amount=_usd("40.00"),
            at=start + timedelta(days=20),
        ),
    ]
    reasons = [engine.handle(event).reasons() for event in events]
    engine.settle(now=start + timedelta(days=31))
    refund = Refund(
        event_id="e-refund",
        refund_id="refund-1",
        order_id="order-bob",
        amount=_usd("20.00"),
        at=start + timedelta(days=32),
    )
    reasons.append(engine.handle(refund).reasons())
    reasons.append(engine.handle(events[2]).reasons())
    return _Run(engine, reasons)
