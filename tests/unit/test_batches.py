"""Engine.handle_many: batches are one unit of work; a failing event does not lose the others."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from dateutil.relativedelta import relativedelta

import referralkit as rk

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
STORES: dict[str, Callable[[], rk.Store]] = {
    "memory": rk.InMemoryStore,
    "sqlite": lambda: rk.SQLiteStore(":memory:"),
}


def usd(amount: str | int) -> rk.Money:
    return rk.Money(amount, "USD")


def make_engine(store: rk.Store, **options: object) -> rk.Engine:
    program = rk.Program(
        id="batches",
        effective_at=T0,
        currency="USD",
        policies=[rk.DoubleSided(referrer=rk.Cash(usd(20)), referee=rk.Credit(usd(10)))],
        hold=relativedelta(days=30),
    )
    codes = iter(["ALPHA234", "BRAV0234", "CHAR1234"])
    return rk.Engine(
        program,
        store,
        clock=rk.ManualClock(T0),
        code_factory=lambda: next(codes),
        **options,  # type: ignore[arg-type]
    )


def stream(code: str) -> list[rk.Event]:
    at = [T0 + timedelta(minutes=i) for i in range(10)]
    return [
        rk.Signup(event_id="s-bob", participant_id="bob", code=code, at=at[0]),
        rk.Purchase(
            event_id="p-bob", participant_id="bob", order_id="o-1", amount=usd(80), at=at[1]
        ),
        rk.Refund(event_id="r-ghost", refund_id="r-0", order_id="o-404", amount=usd(5), at=at[2]),
        rk.Purchase(
            event_id="p-bob", participant_id="bob", order_id="o-1", amount=usd(80), at=at[1]
        ),
        rk.Refund(event_id="r-bob", refund_id="r-1", order_id="o-1", amount=usd(20), at=at[3]),
        rk.Signup(event_id="s-cy", participant_id="cy", code="NOPE9999", at=at[4]),
    ]


@pytest.fixture(params=sorted(STORES))
def store(request: pytest.FixtureRequest) -> rk.Store:
    return STORES[request.param]()


def test_a_failing_event_is_reported_in_place_and_the_rest_of_its_batch_is_kept(
    store: rk.Store,
) -> None:
    engine = make_engine(store)
    code = engine.issue_code("alice")

    results = engine.handle_many(stream(code), batch_size=10)

    assert [type(r).__name__ for r in results] == [
        "Outcome",
        "Outcome",
        "UnknownOrderError",
        "Outcome",
        "Outcome",
        "Outcome",
    ]
    third = results[3]
    assert isinstance(third, rk.Outcome)
    assert third.duplicate
    assert engine.balance("alice")[rk.Unit("cash", "USD")].lifetime == 15
    assert [o.event_id for o in store.dump()["orders"]] == ["p-bob"]


@pytest.mark.parametrize("batch_size", [1, 2, 4, 100])
def test_batches_of_any_size_write_what_handling_one_by_one_writes(
    store: rk.Store, batch_size: int
) -> None:
    """The same stream, batched or not, leaves identical records (ids included)."""
    one_by_one = make_engine(rk.InMemoryStore())
    code = one_by_one.issue_code("alice")
    expected = []
    for event in stream(code):
        try:
            expected.append(one_by_one.handle(event))
        except rk.ReferralKitError as exc:
            expected.append(exc)  # type: ignore[arg-type]

    batched = make_engine(store)
    assert batched.issue_code("alice") == code
    results = batched.handle_many(stream(code), batch_size=batch_size)

    assert [r if isinstance(r, rk.Outcome) else type(r) for r in results] == [
        r if isinstance(r, rk.Outcome) else type(r) for r in expected
    ]
    assert store.dump() == one_by_one.store.dump()


def test_an_event_repeated_within_one_batch_is_a_duplicate(store: rk.Store) -> None:
    engine = make_engine(store)
    code = engine.issue_code("alice")
    signup = rk.Signup(event_id="s-1", participant_id="bob", code=code, at=T0)

    first, second = engine.handle_many([signup, signup])

    assert isinstance(first, rk.Outcome)
    assert not first.duplicate
    assert isinstance(second, rk.Outcome)
    assert second.duplicate
    assert second.reasons() == first.reasons()


@pytest.mark.parametrize("size", [0, -1, True, 1.5])
def test_a_batch_size_below_one_is_refused(size: object) -> None:
    engine = make_engine(rk.InMemoryStore())
    with pytest.raises(rk.InvalidInputError) as info:
        engine.handle_many([], batch_size=size)  # type: ignore[arg-type]
    assert info.value.field == "batch_size"


def test_a_batch_mixing_new_rewards_and_reversals_of_older_ones_keeps_every_state(
    store: rk.Store,
) -> None:
    """Rewards granted in earlier units and reversed in a batch that also grants new ones
    end reversed (the reversal's state change is not lost at flush)."""
    engine = make_engine(store)
    code = engine.issue_code("alice")
    at = T0 + timedelta(minutes=1)
    engine.handle(rk.Signup(event_id="s-bob", participant_id="bob", code=code, at=T0))
    engine.handle(
        rk.Purchase(event_id="p-bob", participant_id="bob", order_id="o-1", amount=usd(80), at=at)
    )
    batch: list[rk.Event] = [
        rk.Signup(event_id="s-cy", participant_id="cy", code=code, at=at),
        rk.Purchase(event_id="p-cy", participant_id="cy", order_id="o-2", amount=usd(50), at=at),
        rk.Chargeback(event_id="cb-1", chargeback_id="cb-1", order_id="o-1", at=at),
    ]

    engine.handle_many(batch, batch_size=3)

    states = {v.reward.order_id: v.state for v in engine.rewards_for("alice")}
    assert states == {"o-1": rk.RewardState.REVERSED, "o-2": rk.RewardState.PENDING}
    with store.unit_of_work() as uow:
        pending = uow.ledger.in_state("batches", rk.RewardState.PENDING, due_by=None, limit=10)
        reversed_ = uow.ledger.in_state("batches", rk.RewardState.REVERSED, due_by=None, limit=10)
    assert {r.order_id for r in pending} == {"o-2"}
    assert {r.order_id for r in reversed_} == {"o-1"}
    assert engine.settle(T0 + timedelta(days=40)) == 2  # only the o-2 rewards are approved


def test_a_store_whose_prefetch_takes_fewer_keywords_gets_only_those() -> None:
    """A custom store written before a prefetch keyword was added keeps working: the engine
    passes only the keywords its ``prefetch`` declares."""
    seen: list[dict[str, object]] = []

    class OlderUnit:
        def __init__(self, inner: object) -> None:
            self._inner = inner

        def __getattr__(self, name: str) -> object:
            return getattr(self._inner, name)

        def __enter__(self) -> OlderUnit:
            self._inner.__enter__()  # type: ignore[attr-defined]
            return self

        def __exit__(self, *exc: object) -> None:
            self._inner.__exit__(*exc)  # type: ignore[attr-defined]

        def prefetch(self, program_id: str, *, event_ids=(), participant_ids=()) -> None:
            seen.append({"event_ids": list(event_ids), "participant_ids": list(participant_ids)})

    class OlderStore:
        def __init__(self) -> None:
            self._inner = rk.InMemoryStore()

        def unit_of_work(self) -> OlderUnit:
            return OlderUnit(self._inner.unit_of_work())

        def dump(self):  # type: ignore[no-untyped-def]
            return self._inner.dump()

    engine = make_engine(OlderStore())  # type: ignore[arg-type]
    code = engine.issue_code("alice")
    results = engine.handle_many(stream(code), batch_size=100)
    assert all(isinstance(r, rk.Outcome | rk.ReferralKitError) for r in results)
    assert seen
    assert set(seen[0]) == {"event_ids", "participant_ids"}
    assert seen[0]["event_ids"]


# -- handle_stream -------------------------------------------------------------------------


def signups(code: str) -> Iterator[rk.Event]:
    """An endless stream of referred sign-ups."""
    for i in itertools.count():
        yield rk.Signup(event_id=f"s-{i}", participant_id=f"p{i}", code=code, at=T0)


def logged(path: Path) -> list[str]:
    """The event ids a second store on the SQLite file at ``path`` sees committed."""
    reader = rk.SQLiteStore(path)
    try:
        with reader.unit_of_work() as uow:
            return [record.event_id for _, record in uow.events.since("batches", 0, 100)]
    finally:
        reader.close()


@pytest.mark.parametrize("batch_size", [1, 2, 4, 100])
def test_a_stream_yields_what_handle_many_returns(store: rk.Store, batch_size: int) -> None:
    many = make_engine(rk.InMemoryStore())
    code = many.issue_code("alice")
    expected = many.handle_many(stream(code), batch_size=batch_size)

    streamed = make_engine(store)
    assert streamed.issue_code("alice") == code
    results = list(streamed.handle_stream(stream(code), batch_size=batch_size))

    assert [type(r).__name__ for r in results][2] == "UnknownOrderError"
    assert [r if isinstance(r, rk.Outcome) else type(r) for r in results] == [
        r if isinstance(r, rk.Outcome) else type(r) for r in expected
    ]
    assert store.dump() == many.store.dump()


def test_a_stream_reads_one_batch_ahead_and_commits_it_before_yielding(tmp_path: Path) -> None:
    path = tmp_path / "stream.db"
    engine = make_engine(rk.SQLiteStore(path))
    code = engine.issue_code("alice")
    read: list[str] = []

    def events() -> Iterator[rk.Event]:
        for event in signups(code):
            read.append(event.event_id)
            yield event

    results = engine.handle_stream(events(), batch_size=3)
    assert read == []  # nothing is read before the first result is asked for

    first = next(results)
    assert isinstance(first, rk.Outcome)
    assert first.event_id == "s-0"
    assert read == ["s-0", "s-1", "s-2"]
    assert logged(path) == ["s-0", "s-1", "s-2"]  # committed: another connection sees it

    rest = list(itertools.islice(results, 3))  # the batch's two others, then the next batch
    assert [r.event_id for r in rest if isinstance(r, rk.Outcome)] == ["s-1", "s-2", "s-3"]
    assert read == [f"s-{i}" for i in range(6)]
    assert logged(path) == [f"s-{i}" for i in range(6)]


def test_a_stream_stopped_early_leaves_the_unread_events_unhandled(tmp_path: Path) -> None:
    path = tmp_path / "stopped.db"
    engine = make_engine(rk.SQLiteStore(path))
    code = engine.issue_code("alice")

    results = engine.handle_stream(signups(code), batch_size=2)
    assert [r.event_id for r in itertools.islice(results, 3) if isinstance(r, rk.Outcome)] == [
        "s-0",
        "s-1",
        "s-2",
    ]
    results.close()

    assert logged(path) == ["s-0", "s-1", "s-2", "s-3"]  # the batch read is committed whole
    assert engine.referral_of("p3") is not None
    assert engine.referral_of("p4") is None


@pytest.mark.parametrize("size", [0, -1, True, 1.5])
def test_a_stream_refuses_a_batch_size_below_one_when_called(size: object) -> None:
    engine = make_engine(rk.InMemoryStore())

    def never() -> Iterator[rk.Event]:
        raise AssertionError("no event may be read")
        yield  # pragma: no cover

    with pytest.raises(rk.InvalidInputError) as info:
        engine.handle_stream(never(), batch_size=size)  # type: ignore[arg-type]
    assert info.value.field == "batch_size"


def test_a_stream_with_auto_dispatch_delivers_each_batch_before_yielding_it() -> None:
    notifier = rk.RecordingNotifier()
    engine = make_engine(rk.InMemoryStore(), notifier=notifier, auto_dispatch=True)
    code = engine.issue_code("alice")

    results = engine.handle_stream(signups(code), batch_size=2)
    next(results)

    delivered = [n.kind for n in notifier.sent]
    assert delivered == ["referral_created", "referral_created"]  # both of the first batch
    next(results)
    assert len(notifier.sent) == 2
    next(results)
    assert len(notifier.sent) == 4
