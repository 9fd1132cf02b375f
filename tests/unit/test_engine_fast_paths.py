"""The engine's shortcuts on common paths give what the general rules give."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from dateutil.relativedelta import relativedelta
from hypothesis import given
from hypothesis import strategies as st

import referralkit as rk
from referralkit._ledger import RewardView, reversal_entry
from referralkit._values.records import EntryKind, RewardState, TouchRecord

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def usd(amount: str | int) -> rk.Money:
    return rk.Money(amount, "USD")


def make_engine() -> rk.Engine:
    program = rk.Program(
        id="fast",
        effective_at=T0,
        currency="USD",
        policies=[rk.DoubleSided(referrer=rk.Cash(usd(20)), referee=rk.Credit(usd(10)))],
        hold=relativedelta(days=30),
        min_order=usd(25),
        first_purchase_only=True,
    )
    codes = iter(["QRST2345", "WXYZ2345"])
    return rk.Engine(
        program, rk.InMemoryStore(), clock=rk.ManualClock(T0), code_factory=lambda: next(codes)
    )


def stream(code: str) -> list[rk.Event]:
    at = [T0 + timedelta(minutes=i) for i in range(12)]
    return [
        rk.Click(event_id="c-1", code=code, visitor_id="v-1", channel="email", at=at[0]),
        rk.Signup(event_id="s-bob", participant_id="bob", code=code, at=at[1]),
        rk.Signup(event_id="s-cy", participant_id="cy", at=at[2]),
        rk.Purchase(event_id="p-1", participant_id="bob", order_id="o-1", amount=usd(80), at=at[3]),
        rk.Purchase(event_id="p-2", participant_id="bob", order_id="o-2", amount=usd(90), at=at[4]),
        rk.Purchase(event_id="p-3", participant_id="cy", order_id="o-3", amount=usd(40), at=at[5]),
        rk.Refund(event_id="r-1", refund_id="r-1", order_id="o-1", amount=usd(20), at=at[6]),
        rk.Refund(event_id="r-3", refund_id="r-3", order_id="o-3", amount=usd(40), at=at[7]),
        rk.Signup(event_id="s-dee", participant_id="dee", code=code, at=at[8]),
    ]


def test_handle_many_gives_the_same_from_a_list_a_tuple_and_an_iterator() -> None:
    """Batches cut from a list or tuple are the batches an iterator gives."""
    results = []
    dumps = []
    for kind in ("list", "tuple", "iterator"):
        engine = make_engine()
        events = stream(engine.issue_code("alice"))
        given_events: list[rk.Event] | tuple[rk.Event, ...] | Iterator[rk.Event] = (
            events if kind == "list" else tuple(events) if kind == "tuple" else iter(events)
        )
        results.append(engine.handle_many(given_events, batch_size=4))
        dumps.append(engine.store.dump())
    assert results[0] == results[1] == results[2]
    assert dumps[0] == dumps[1] == dumps[2]


def test_shortcut_decisions_equal_those_decision_of_makes() -> None:
    """Decisions built without Decision.of (sided grants, skipped triggers, referrals made,
    unreferred orders) equal what Decision.of makes from the same parameters."""
    engine = make_engine()
    outcomes = engine.handle_many(stream(engine.issue_code("alice")), batch_size=100)
    by_id = {o.event_id: o for o in outcomes if isinstance(o, rk.Outcome)}
    assert by_id["s-bob"].decisions[-1] == rk.Decision.of(
        "double_sided",
        rk.Verdict.SKIPPED,
        "policy.not_trigger",
        trigger=rk.Trigger.FIRST_PURCHASE,
        event="signup",
    )
    assert by_id["s-dee"].decisions[-1] == by_id["s-bob"].decisions[-1]
    created = [d for d in by_id["s-bob"].decisions if d.code == "referral.created"]
    assert created == [
        rk.Decision.of(
            "attribution",
            rk.Verdict.NOTED,
            "referral.created",
            referee="bob",
            referrer="alice",
            code="QRST2345",
        )
    ]
    granted = [d for d in by_id["p-1"].decisions if d.code == "policy.granted"]
    assert granted == [
        rk.Decision.of(
            "double_sided",
            rk.Verdict.GRANTED,
            "policy.granted",
            role=rk.Role.REFERRER,
            participant="alice",
            value=rk.Cash(usd(20)),
        ),
        rk.Decision.of(
            "double_sided",
            rk.Verdict.GRANTED,
            "policy.granted",
            role=rk.Role.REFEREE,
            participant="bob",
            value=rk.Credit(usd(10)),
        ),
    ]
    assert by_id["p-3"].decisions == (
        rk.Decision.of("engine", rk.Verdict.NOTED, "purchase.not_referred", participant="cy"),
    )
    assert by_id["s-cy"].decisions == (
        rk.Decision.of("attribution", rk.Verdict.NOTED, "referral.no_code"),
    )


def test_touches_without_data_share_one_read_only_empty_map() -> None:
    """An empty ``data`` is stored as an empty read-only mapping, equal to ``{}``."""
    a = TouchRecord("p", "tch_1", "code", T0, "e1")
    b = TouchRecord("p", "tch_2", "code", T0, "e2", data={})
    assert a.data == b.data == {}
    assert dict(a.data) == {}
    assert not hasattr(a.data, "__setitem__")
    c = TouchRecord("p", "tch_3", "click", T0, "e3", data={"utm_source": "x"})
    assert c.data == {"utm_source": "x"}


_KINDS = [
    EntryKind.APPROVED,
    EntryKind.REVERSED,
    EntryKind.CLAWED_BACK,
    EntryKind.REJECTED,
    EntryKind.REDEEMED,
    EntryKind.EXPIRED,
    EntryKind.PAID,
    EntryKind.HELD,
]


@given(
    granted=st.integers(1, 10_000),
    later=st.lists(st.tuples(st.sampled_from(_KINDS), st.integers(1, 5_000)), max_size=6),
    state=st.sampled_from(list(RewardState)),
    target=st.integers(0, 12_000),
)
def test_reversal_entry_takes_what_the_reward_views_sums_say(
    granted: int, later: list[tuple[EntryKind, int]], state: RewardState, target: int
) -> None:
    """reversal_entry, adding the entries up in one pass, reverses what RewardView's
    granted / reversed / used / outstanding say it should."""
    reward = rk.Reward(
        reward_id="rwd_1",
        program_id="p",
        program_version=1,
        referral_id="ref_1",
        participant_id="alice",
        role=rk.Role.REFERRER,
        value=rk.Points(granted, "pts"),
        policy="points",
        source_event_id="e1",
        order_id="o1",
        base_amount=None,
        created_at=T0,
        payable_at=T0,
    )
    entries = [
        rk.Entry(
            "ent_0", "rwd_1", "p", "alice", EntryKind.GRANTED, Decimal(granted), T0, "e1", state
        )
    ]
    for i, (kind, quantity) in enumerate(later, 1):
        entries.append(
            rk.Entry(f"ent_{i}", "rwd_1", "p", "alice", kind, Decimal(quantity), T0, "x", state)
        )
    view = RewardView(reward, tuple(entries))
    wanted = Decimal(target)
    entry = reversal_entry(view, wanted, T0, "r1")
    quantity = min(min(wanted, view.granted) - view.reversed, view.outstanding)
    if state in (RewardState.REJECTED, RewardState.FRAUD, RewardState.REVERSED) or quantity <= 0:
        assert entry is None
        return
    assert entry is not None
    assert entry.quantity == quantity
    if state is RewardState.PAID:
        assert entry.kind is EntryKind.CLAWED_BACK
        assert entry.state_after is state
    else:
        full = view.reversed + view.used + quantity >= view.granted
        assert entry.kind is EntryKind.REVERSED
        assert entry.state_after is (RewardState.REVERSED if full else state)
