"""Conditions: structured comparisons, All / Any, and when(condition, policy)."""

from __future__ import annotations

from decimal import Decimal

import pytest

import referralkit as rk
from referralkit.policies import All, Any, Attr, Compare, SingleSided, when

USD = "USD"
ITEMS = (
    rk.LineItem(sku="tv", quantity=2, unit_price=rk.Money(40, USD), category="video"),
    rk.LineItem(sku="cable", quantity=1, unit_price=rk.Money(20, USD)),
)


def usd(amount: str | int) -> rk.Money:
    return rk.Money(amount, USD)


def holds(condition, ctx) -> bool:
    return condition.failure(ctx) is None


def test_attr_operators_build_comparisons():
    assert (Attr("sale.amount") >= usd(50)) == Compare("sale.amount", ">=", usd(50))
    assert (Attr("referral.channel") != "sms") == Compare("referral.channel", "!=", "sms")
    assert Attr("sale.skus").contains("tv") == Compare("sale.skus", "contains", "tv")
    assert Attr("referral.channel").in_(["a"]) == Compare("referral.channel", "in", ("a",))


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (Attr("sale.amount") >= usd("100.00"), True),
        (Attr("sale.amount") > usd("100.00"), False),
        (Attr("sale.amount") < usd("100.01"), True),
        (Attr("sale.amount") <= usd("99.99"), False),
        (Attr("sale.amount").in_([usd(100), usd(5)]), True),
        (Attr("sale.amount").not_in([usd(100)]), False),
        (Attr("sale.skus").contains("tv"), True),
        (Attr("sale.categories").contains("audio"), False),
        (Attr("sale.item_count") == 3, True),
        (Attr("sale.metadata.campaign") == "spring", True),
        (Attr("sale.metadata.missing") == "spring", False),
        (Attr("event.metadata.campaign").in_(["spring", "fall"]), True),
        (Attr("referral.channel") == "email", True),
        (Attr("referral.code").contains("CD12"), True),
        (Attr("referrer.successful_referrals") >= 4, True),
        (Attr("referrer.revenue_referred") > usd("999.99"), True),
        (Attr("referee.purchase_number") == 3, True),
        (Attr("referee.days_since_signup") < 10, True),
        (Attr("program.spend") == usd(0), True),
    ],
)
def test_comparisons_over_the_context(make_ctx, condition, expected):
    ctx = make_ctx(
        items=ITEMS,
        days=9,
        metadata={"campaign": "spring"},
        counters={
            rk.Counter.REFERRER_SUCCESSFUL_REFERRALS: 4,
            rk.Counter.REFERRER_REVENUE_REFERRED: Decimal("1000"),
            rk.Counter.REFEREE_PURCHASES: 2,
        },
    )
    assert holds(condition, ctx) is expected


def test_sale_attributes_are_missing_at_a_sign_up(make_ctx):
    ctx = make_ctx(signup=True)
    failed = (Attr("sale.amount") >= usd(1)).failure(ctx)
    assert failed == "sale.amount >= 1.00 USD (sale.amount is missing)"
    assert holds(Attr("referee.purchase_number") == 0, ctx)


def test_all_reports_the_first_false_clause_and_any_every_clause(make_ctx):
    ctx = make_ctx("30.00")
    both = All([Attr("referral.channel") == "email", Attr("sale.amount") >= usd(50)])
    assert both.failure(ctx) == "sale.amount >= 50.00 USD (was 30.00 USD)"
    either = Any([Attr("referral.channel") == "sms", Attr("sale.amount") >= usd(50)])
    assert either.failure(ctx) == (
        "none of: referral.channel == 'sms' (was 'email'); sale.amount >= 50.00 USD (was 30.00 USD)"
    )
    assert holds(Any([both, Attr("referral.channel") == "email"]), ctx)


def test_when_records_the_false_clause_in_a_skipped_decision(make_ctx):
    policy = when(
        Attr("sale.amount") >= usd(50), SingleSided(referrer=rk.Cash(usd(10)), name="big")
    )
    assert policy.name == "big"
    assert policy.trigger is rk.Trigger.FIRST_PURCHASE
    result = policy.evaluate(make_ctx("30.00"))
    assert result.grants == ()
    (decision,) = result.decisions
    assert (decision.source, decision.verdict, decision.code) == (
        "big",
        rk.Verdict.SKIPPED,
        "condition.false",
    )
    assert (
        decision.message() == "the condition was not met: sale.amount >= 50.00 USD (was 30.00 USD)"
    )
    assert len(policy.evaluate(make_ctx("50.00")).grants) == 1


def test_when_needs_the_counters_of_its_condition_and_policy():
    policy = when(
        Attr("referrer.successful_referrals") >= 2,
        SingleSided(referrer=rk.Cash(usd(10))),
    )
    assert policy.needs() == {rk.Counter.REFERRER_SUCCESSFUL_REFERRALS}


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: Attr("sale.colour"), "attr"),
        (lambda: Compare("referee.shoe_size", "==", "42"), "compare.attribute"),
        (lambda: Compare("referee.country", "<", "DE"), "compare.op"),
        (lambda: Compare("sale.recurring", "==", "yes"), "compare.value"),
        (lambda: Compare("sale.recurring", "in", [True]), "compare.op"),
        (lambda: Compare("sale.amount", "~=", usd(1)), "compare.op"),
        (lambda: Compare("sale.skus", "==", "tv"), "compare.op"),
        (lambda: Compare("sale.amount", ">=", "50"), "compare.value"),
        (lambda: Compare("sale.item_count", ">=", True), "compare.value"),
        (lambda: Compare("referral.channel", "in", []), "compare.value"),
        (lambda: Compare("referral.channel", "in", ["a", 1]), "compare.value[1]"),
        (lambda: All([]), "conditions"),
        (lambda: All(["x"]), "conditions[0]"),
        (lambda: when("x", SingleSided(referrer=rk.Points(1))), "when.condition"),
        (lambda: when(Attr("sale.item_count") > 1, "x"), "when.policy"),
    ],
)
def test_bad_conditions_are_refused_with_the_field(build, field):
    with pytest.raises(rk.InvalidProgramError) as info:
        build()
    assert info.value.field == field


def test_a_money_value_in_another_currency_is_refused_by_the_program():
    from datetime import UTC, datetime

    policy = when(Attr("sale.amount") >= rk.Money(50, "EUR"), SingleSided(referrer=rk.Points(1)))
    with pytest.raises(rk.InvalidProgramError) as info:
        rk.Program(
            id="p", effective_at=datetime(2026, 1, 1, tzinfo=UTC), currency=USD, policies=[policy]
        )
    assert info.value.field == "single_sided.condition"


# -- referral and referee facts in the engine -----------------------------------------------------
def _referred_engine(policy: rk.RewardPolicy) -> rk.Engine:
    from datetime import UTC, datetime

    start = datetime(2026, 4, 1, tzinfo=UTC)
    program = rk.Program(id="meta", effective_at=start, currency="USD", policies=[policy])
    return rk.Engine(program, rk.InMemoryStore(), clock=rk.ManualClock(start))


def _join(engine: rk.Engine, referee: str, *, campaign=None, channel="email", country=None):
    from datetime import timedelta

    at = engine.program.effective_at + timedelta(hours=1)
    code = engine.code_of("alice") or engine.issue_code("alice")
    engine.handle(
        rk.Click(
            event_id=f"c-{referee}",
            at=at,
            code=code,
            visitor_id=f"v-{referee}",
            channel=channel,
            campaign=campaign,
        )
    )
    engine.handle(
        rk.Signup(
            event_id=f"s-{referee}",
            participant_id=referee,
            at=at + timedelta(minutes=5),
            visitor_id=f"v-{referee}",
            country=country,
        )
    )


def _pay(engine: rk.Engine, referee: str, n: int = 1) -> rk.Outcome:
    from datetime import timedelta

    return engine.handle(
        rk.Purchase(
            event_id=f"p-{referee}-{n}",
            participant_id=referee,
            order_id=f"o-{referee}-{n}",
            amount=usd(80),
            at=engine.program.effective_at + timedelta(days=n),
        )
    )


def test_conditions_read_the_referral_campaign_and_channel_and_the_referee_country():
    condition = All(
        [
            Attr("referral.campaign") == "spring",
            Attr("referral.channel") == "email",
            Attr("referee.country").in_(["DE", "AT"]),
        ]
    )
    engine = _referred_engine(when(condition, SingleSided(referrer=rk.Cash(usd(10)))))
    _join(engine, "bob", campaign="spring", country="DE")
    _join(engine, "carol", campaign="spring", country="US")
    _join(engine, "dave", campaign="autumn", country="AT")
    _join(engine, "erin", campaign="spring")  # no country given
    _join(engine, "fay", campaign="spring", channel="sms", country="DE")
    assert engine.referral_of("bob").campaign == "spring"
    assert [str(g.value) for g in _pay(engine, "bob").grants] == ["10.00 USD cash"]
    clauses = {}
    for who in ("carol", "dave", "erin", "fay"):
        outcome = _pay(engine, who)
        assert outcome.grants == ()
        (false,) = [d for d in outcome.decisions if d.code == "condition.false"]
        clauses[who] = false.param_map["clause"]
    assert clauses["carol"] == "referee.country in ['DE', 'AT'] (was 'US')"
    assert clauses["dave"] == "referral.campaign == 'spring' (was 'autumn')"
    assert clauses["erin"] == "referee.country in ['DE', 'AT'] (referee.country is missing)"
    assert clauses["fay"] == "referral.channel == 'email' (was 'sms')"


def test_the_referee_country_is_kept_for_every_store():
    from datetime import UTC, datetime

    start = datetime(2026, 4, 1, tzinfo=UTC)
    policy = when(Attr("referee.country") == "FR", SingleSided(referrer=rk.Cash(usd(5))))
    for store in (rk.InMemoryStore(), rk.SQLiteStore(":memory:")):
        program = rk.Program(id="meta", effective_at=start, currency="USD", policies=[policy])
        engine = rk.Engine(program, store, clock=rk.ManualClock(start))
        _join(engine, "bob", country="FR")
        assert [str(g.value) for g in _pay(engine, "bob").grants] == ["5.00 USD cash"]
        assert store.dump()["participants"][-1].country == "FR"


def test_a_referral_without_a_campaign_makes_a_campaign_comparison_false():
    engine = _referred_engine(
        when(Attr("referral.campaign") == "spring", SingleSided(referrer=rk.Cash(usd(10))))
    )
    _join(engine, "bob")
    assert engine.referral_of("bob").campaign is None
    outcome = _pay(engine, "bob")
    assert outcome.grants == ()
    (false,) = [d for d in outcome.decisions if d.code == "condition.false"]
    assert "referral.campaign is missing" in false.param_map["clause"]


def test_sale_recurring_tells_a_first_purchase_from_a_repeat():
    policy = when(
        Attr("sale.recurring") == True,  # noqa: E712 - builds a Compare
        SingleSided(referrer=rk.Cash(usd(3)), trigger=rk.Trigger.EVERY_PURCHASE),
    )
    assert policy.needs() == {rk.Counter.REFEREE_PURCHASES}
    engine = _referred_engine(policy)
    _join(engine, "bob")
    assert _pay(engine, "bob", 1).grants == ()
    assert [str(g.value) for g in _pay(engine, "bob", 2).grants] == ["3.00 USD cash"]


def test_the_new_attributes_round_trip_through_config():
    condition = All(
        [
            Attr("referral.campaign").in_(["spring", "launch"]),
            Attr("referee.country") != "US",
            Attr("sale.recurring") == False,  # noqa: E712 - builds a Compare
        ]
    )
    policy = when(condition, SingleSided(referrer=rk.Cash(usd(10))))
    from datetime import UTC, datetime

    program = rk.Program(
        id="meta", effective_at=datetime(2026, 4, 1, tzinfo=UTC), currency="USD", policies=[policy]
    )
    assert rk.Program.from_dict(program.to_dict()) == program


def test_a_signup_country_must_be_an_iso_alpha_2_code():
    from datetime import UTC, datetime

    for bad in ("de", "DEU", "D1", "", 49):
        with pytest.raises(rk.InvalidInputError) as info:
            rk.Signup(
                event_id="s", participant_id="bob", at=datetime(2026, 4, 1, tzinfo=UTC), country=bad
            )
        assert info.value.field == "signup.country"


def test_referee_new_customer_is_false_for_a_customer_the_program_lets_be_referred():
    from datetime import UTC, datetime, timedelta

    start = datetime(2026, 4, 1, tzinfo=UTC)
    policy = when(
        Attr("referee.new_customer") == True,  # noqa: E712 - builds a Compare
        SingleSided(referrer=rk.Cash(usd(10))),
    )
    assert policy.needs() == {rk.Counter.REFEREE_EXISTING_CUSTOMER}
    program = rk.Program(
        id="new",
        effective_at=start,
        currency="USD",
        policies=[policy],
        attribution=rk.attribution.AttributionRules(allow_existing_customers=True),
    )
    engine = rk.Engine(program, rk.InMemoryStore(), clock=rk.ManualClock(start))
    code = engine.issue_code("alice")
    # carol bought before she signed up; dave says so at sign-up; bob is new.
    engine.handle(
        rk.Purchase(event_id="p0", participant_id="carol", order_id="o0", amount=usd(9), at=start)
    )
    later = start + timedelta(hours=1)
    for who, existing in (("bob", False), ("carol", False), ("dave", True)):
        engine.handle(
            rk.Signup(
                event_id=f"s-{who}",
                participant_id=who,
                code=code,
                at=later,
                existing_customer=existing,
            )
        )
    paid = {}
    for n, who in enumerate(("bob", "carol", "dave"), start=1):
        outcome = engine.handle(
            rk.Purchase(
                event_id=f"p{n}",
                participant_id=who,
                order_id=f"o{n}",
                amount=usd(50),
                at=later + timedelta(hours=n),
            )
        )
        paid[who] = [str(g.value) for g in outcome.grants]
    assert paid == {"bob": ["10.00 USD cash"], "carol": [], "dave": []}


def test_a_reattributed_buyer_from_before_the_sign_up_is_no_new_customer():
    from datetime import UTC, datetime, timedelta

    start = datetime(2026, 4, 1, tzinfo=UTC)
    policy = when(
        Attr("referee.new_customer") == False,  # noqa: E712 - builds a Compare
        SingleSided(referrer=rk.Cash(usd(7)), trigger=rk.Trigger.EVERY_PURCHASE),
    )
    program = rk.Program(id="re", effective_at=start, currency="USD", policies=[policy])
    engine = rk.Engine(program, rk.InMemoryStore(), clock=rk.ManualClock(start))
    engine.issue_code("alice")
    engine.handle(
        rk.Purchase(event_id="p0", participant_id="carol", order_id="o0", amount=usd(9), at=start)
    )
    later = start + timedelta(hours=1)
    engine.handle(rk.Signup(event_id="s", participant_id="carol", at=later))
    engine.reattribute("carol", "alice", actor="ops", reason="ticket 9", now=later)
    outcome = engine.handle(
        rk.Purchase(
            event_id="p1",
            participant_id="carol",
            order_id="o1",
            amount=usd(20),
            at=later + timedelta(hours=1),
        )
    )
    assert [str(g.value) for g in outcome.grants] == ["7.00 USD cash"]
