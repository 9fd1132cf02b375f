"""Bad input: each case raises a specific error naming the field and the value, and writes
nothing; a referral that cannot be made is a reason code in the Outcome, not an error."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from dateutil.relativedelta import relativedelta

import referralkit as rk

T0 = datetime(2026, 2, 2, 10, 0, tzinfo=UTC)
NAIVE = datetime(2026, 2, 2, 10, 0)


def usd(amount: str | int) -> rk.Money:
    return rk.Money(amount, "USD")


def double_sided() -> rk.DoubleSided:
    return rk.DoubleSided(referrer=rk.Cash(usd(20)), referee=rk.Credit(usd(10)))


def program(**changes: Any) -> rk.Program:
    terms: dict[str, Any] = {
        "id": "friends",
        "effective_at": T0 - timedelta(days=1),
        "currency": "USD",
        "policies": [double_sided()],
        "hold": relativedelta(days=30),
        "first_purchase_only": True,
    }
    terms.update(changes)
    return rk.Program(**terms)


def purchase(
    event_id: str = "evt-p1",
    order_id: str = "order-1",
    amount: rk.Money | None = None,
    participant_id: str = "bob",
    at: datetime = T0 + timedelta(hours=1),
) -> rk.Purchase:
    return rk.Purchase(
        event_id=event_id,
        participant_id=participant_id,
        order_id=order_id,
        amount=usd("80.00") if amount is None else amount,
        at=at,
    )


def refund(
    amount: str = "80.00", order_id: str = "order-1", refund_id: str = "rf-1", event_id: str = ""
) -> rk.Refund:
    return rk.Refund(
        event_id=event_id or f"evt-{refund_id}",
        refund_id=refund_id,
        order_id=order_id,
        amount=usd(amount),
        at=T0 + timedelta(days=2),
    )


def signup(
    participant_id: str, code: str | None, event_id: str = "", email: str | None = None
) -> rk.Signup:
    return rk.Signup(
        event_id=event_id or f"evt-signup-{participant_id}",
        participant_id=participant_id,
        code=code,
        email=email,
        at=T0,
    )


@pytest.fixture
def engine() -> rk.Engine:
    """Alice has a code; Bob signed up with it (no purchase yet)."""
    eng = rk.Engine(program(), rk.InMemoryStore(), clock=rk.ManualClock(T0))
    eng.handle(signup("bob", eng.issue_code("alice")))
    return eng


@pytest.fixture
def bought(engine: rk.Engine) -> rk.Engine:
    """... and Bob bought order-1 for 80 USD."""
    engine.handle(purchase())
    return engine


def dump(engine: rk.Engine) -> Mapping[str, list[Any]]:
    return engine.store.dump()


def changed_tables(before: Mapping[str, list[Any]], after: Mapping[str, list[Any]]) -> set[str]:
    return {table for table in after if after[table] != before[table]}


def assert_names(err: Any, field: str, value: object) -> None:
    """The error keeps the field and the value as attributes and names both."""
    assert err.field == field
    assert err.value == value
    assert field in str(err)
    assert repr(value) in str(err)


def rejected(
    engine: rk.Engine, expected: type[Exception], action: Callable[[], object]
) -> pytest.ExceptionInfo[Any]:
    """Run ``action``, expect ``expected``, and check that the store did not change."""
    before = dump(engine)
    with pytest.raises(expected) as info:
        action()
    assert dump(engine) == before
    return info


# -- values at the boundary ------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: purchase(at=NAIVE), "purchase.at"),
        (lambda: rk.Signup(event_id="e", participant_id="p", at=NAIVE), "signup.at"),
        (
            lambda: rk.Refund(event_id="e", refund_id="r", order_id="o", amount=usd(1), at=NAIVE),
            "refund.at",
        ),
        (
            lambda: rk.Chargeback(event_id="e", chargeback_id="c", order_id="o", at=NAIVE),
            "chargeback.at",
        ),
    ],
    ids=["purchase", "signup", "refund", "chargeback"],
)
def test_a_naive_event_datetime_is_a_naive_datetime_error(
    bought: rk.Engine, build: Callable[[], rk.Event], field: str
) -> None:
    info = rejected(bought, rk.NaiveDatetimeError, lambda: bought.handle(build()))
    assert_names(info.value, field, NAIVE)
    assert isinstance(info.value, ValueError)


def test_settle_with_a_naive_now_is_a_naive_datetime_error(bought: rk.Engine) -> None:
    info = rejected(bought, rk.NaiveDatetimeError, lambda: bought.settle(NAIVE))
    assert_names(info.value, "now", NAIVE)


def test_a_float_amount_is_refused_for_money() -> None:
    with pytest.raises(rk.InvalidInputError) as info:
        rk.Money(80.0, "USD")  # type: ignore[arg-type]
    assert_names(info.value, "amount", 80.0)
    assert "float" in info.value.problem


def test_a_float_purchase_amount_is_refused_and_nothing_is_written(engine: rk.Engine) -> None:
    info = rejected(
        engine,
        rk.InvalidInputError,
        lambda: engine.handle(purchase(amount=80.0)),  # type: ignore[arg-type]
    )
    assert_names(info.value, "purchase.amount", 80.0)


def test_an_unknown_currency_names_the_currency_field() -> None:
    with pytest.raises(rk.InvalidInputError) as info:
        rk.Money("80.00", "XYZ")
    assert_names(info.value, "currency", "XYZ")


@pytest.mark.parametrize(
    ("amount", "currency"), [("80.005", "USD"), ("5.5", "JPY"), ("1.0001", "BHD")]
)
def test_more_decimals_than_the_currency_allows_is_refused(amount: str, currency: str) -> None:
    with pytest.raises(rk.InvalidInputError) as info:
        rk.Money(amount, currency)
    assert_names(info.value, "amount", amount)
    assert currency in str(info.value)


def test_a_negative_purchase_amount_is_refused_and_nothing_is_written(engine: rk.Engine) -> None:
    info = rejected(
        engine, rk.InvalidInputError, lambda: engine.handle(purchase(amount=usd("-1.00")))
    )
    assert_names(info.value, "purchase.amount", usd("-1.00"))


def test_a_zero_refund_amount_is_refused(bought: rk.Engine) -> None:
    info = rejected(bought, rk.InvalidInputError, lambda: bought.handle(refund("0.00")))
    assert_names(info.value, "refund.amount", usd(0))


# -- conflicts and repeats ---------------------------------------------------------------


def test_an_event_id_reused_with_a_different_payload_is_a_conflict(bought: rk.Engine) -> None:
    other = purchase(order_id="order-2", amount=usd("15.00"))

    info = rejected(bought, rk.EventConflictError, lambda: bought.handle(other))

    assert_names(info.value, "event_id", "evt-p1")


def test_an_event_id_reused_with_other_metadata_is_a_conflict(bought: rk.Engine) -> None:
    original = purchase()
    tagged = rk.Purchase(
        event_id=original.event_id,
        participant_id=original.participant_id,
        order_id=original.order_id,
        amount=original.amount,
        at=original.at,
        metadata={"utm_source": "mail"},
    )
    rejected(bought, rk.EventConflictError, lambda: bought.handle(tagged))


def test_an_order_id_reused_with_other_fields_under_a_new_event_id_is_a_conflict(
    bought: rk.Engine,
) -> None:
    info = rejected(
        bought,
        rk.EventConflictError,
        lambda: bought.handle(purchase(event_id="evt-p1-again", amount=usd("90.00"))),
    )
    assert_names(info.value, "order_id", "order-1")


def test_an_order_id_reused_with_the_same_fields_is_an_accepted_no_op(bought: rk.Engine) -> None:
    before = dump(bought)

    outcome = bought.handle(purchase(event_id="evt-p1-redelivered", at=T0 + timedelta(hours=3)))

    assert outcome.reasons() == ("order.repeated",)
    assert outcome.grants == ()
    assert not outcome.duplicate
    assert changed_tables(before, dump(bought)) == {"events"}
    assert len(bought.rewards_for("alice")) == 1


def test_a_refund_id_reused_with_another_amount_is_a_conflict(bought: rk.Engine) -> None:
    bought.handle(refund("20.00"))

    info = rejected(
        bought,
        rk.EventConflictError,
        lambda: bought.handle(refund("30.00", event_id="evt-rf-1-again")),
    )
    assert_names(info.value, "refund_id", "rf-1")


def test_a_refund_id_reused_with_the_same_fields_reverses_nothing_again(bought: rk.Engine) -> None:
    bought.handle(refund("20.00"))
    before = dump(bought)

    outcome = bought.handle(refund("20.00", event_id="evt-rf-1-again"))

    assert outcome.reasons() == ("refund.repeated",)
    assert outcome.reversals == ()
    assert changed_tables(before, dump(bought)) == {"events"}


# -- currencies and orders ---------------------------------------------------------------


def test_a_purchase_in_another_currency_than_the_programs_is_a_currency_mismatch(
    engine: rk.Engine,
) -> None:
    eur = rk.Money("80.00", "EUR")

    info = rejected(engine, rk.CurrencyMismatchError, lambda: engine.handle(purchase(amount=eur)))

    assert_names(info.value, "purchase.amount", eur)
    assert isinstance(info.value, rk.InvalidInputError)
    assert "USD" in str(info.value)


def test_a_refund_in_another_currency_than_the_order_is_a_currency_mismatch(
    bought: rk.Engine,
) -> None:
    eur = rk.Money("10.00", "EUR")
    event = rk.Refund(event_id="e-r", refund_id="r", order_id="order-1", amount=eur, at=T0)

    info = rejected(bought, rk.CurrencyMismatchError, lambda: bought.handle(event))

    assert_names(info.value, "refund.amount", eur)


def test_a_refund_of_an_order_never_received_is_retryable_and_succeeds_once_it_arrives(
    engine: rk.Engine,
) -> None:
    early = refund("80.00", order_id="order-late")

    info = rejected(engine, rk.UnknownOrderError, lambda: engine.handle(early))

    err = info.value
    assert isinstance(err, rk.RetryLaterError)
    assert (err.field, err.order_id) == ("refund.order_id", "order-late")
    assert "refund.order_id" in str(err)
    assert "'order-late'" in str(err)
    assert engine.outcome_of(early.event_id) is None

    engine.handle(purchase(order_id="order-late"))
    outcome = engine.handle(early)

    assert not outcome.duplicate
    assert {r.participant_id for r in outcome.reversals} == {"alice", "bob"}
    assert engine.balance("alice").is_zero()


def test_an_unknown_order_error_keeps_the_value_like_every_other_input_error(
    engine: rk.Engine,
) -> None:
    with pytest.raises(rk.UnknownOrderError) as info:
        engine.handle(refund(order_id="order-late"))
    assert_names(info.value, "refund.order_id", "order-late")


def test_a_chargeback_of_an_order_never_received_is_retryable(engine: rk.Engine) -> None:
    event = rk.Chargeback(event_id="e-cb", chargeback_id="cb", order_id="order-x", at=T0)

    info = rejected(engine, rk.RetryLaterError, lambda: engine.handle(event))

    assert isinstance(info.value, rk.UnknownOrderError)
    assert info.value.field == "chargeback.order_id"


def test_a_refund_above_the_order_is_an_invalid_event(bought: rk.Engine) -> None:
    info = rejected(bought, rk.InvalidEventError, lambda: bought.handle(refund("80.01")))
    assert_names(info.value, "refund.amount", usd("80.01"))


def test_refunds_above_what_remains_refundable_are_invalid_events(bought: rk.Engine) -> None:
    bought.handle(refund("60.00"))

    info = rejected(
        bought, rk.InvalidEventError, lambda: bought.handle(refund("20.01", refund_id="rf-2"))
    )

    assert_names(info.value, "refund.amount", usd("20.01"))
    assert "20.00 USD" in str(info.value)


def test_a_code_that_is_empty_once_normalised_still_records_the_signup(engine: rk.Engine) -> None:
    outcome = engine.handle(signup("zed", "--"))
    assert outcome.reasons() == ("referral.unknown_code",)


def test_an_object_that_is_not_an_event_is_refused(engine: rk.Engine) -> None:
    info = rejected(engine, rk.InvalidInputError, lambda: engine.handle("signup"))  # type: ignore[arg-type]
    assert_names(info.value, "event", "signup")


# -- referrals that cannot be made ------------------------------------------------------

ONLY_THE_SIGNUP = {"events", "participants", "personal_data"}


def test_an_unknown_code_records_the_signup_without_a_referral(engine: rk.Engine) -> None:
    before = dump(engine)

    outcome = engine.handle(signup("carol", "ZZZZ-ZZZZ"))

    assert outcome.reasons() == ("referral.unknown_code",)
    assert outcome.decisions[0].verdict is rk.Verdict.REFUSED
    assert outcome.referral_id is None
    assert outcome.grants == ()
    assert engine.referral_of("carol") is None
    assert changed_tables(before, dump(engine)) <= ONLY_THE_SIGNUP
    assert any(p.participant_id == "carol" for p in dump(engine)["participants"])


def test_using_ones_own_code_is_a_self_referral(engine: rk.Engine) -> None:
    code = engine.issue_code("dora")
    before = dump(engine)

    outcome = engine.handle(signup("dora", code.lower()))

    assert outcome.reasons() == ("referral.self_referral",)
    assert outcome.decisions[0].param_map["via"] == "code"
    assert engine.referral_of("dora") is None
    assert changed_tables(before, dump(engine)) <= ONLY_THE_SIGNUP


def test_an_email_variant_of_the_referrers_inbox_is_a_self_referral() -> None:
    engine = rk.Engine(program(), rk.InMemoryStore(), clock=rk.ManualClock(T0))
    engine.handle(signup("alice", None, email="a.lice@googlemail.com"))
    code = engine.issue_code("alice")
    before = dump(engine)

    outcome = engine.handle(signup("alice-2", code, email="Alice+promo@Gmail.com"))

    assert outcome.reasons() == ("referral.self_referral",)
    assert outcome.decisions[0].param_map == {"referee": "alice-2", "via": "email"}
    assert engine.referral_of("alice-2") is None
    assert changed_tables(before, dump(engine)) <= ONLY_THE_SIGNUP
    assert ("friends", "alice-2") in dict(dump(engine)["personal_data"])


def test_an_already_referred_referee_keeps_their_first_referrer(engine: rk.Engine) -> None:
    carols = engine.issue_code("carol")
    before = dump(engine)

    outcome = engine.handle(signup("bob", carols, event_id="evt-signup-bob-again"))

    assert outcome.reasons() == ("referral.already_referred",)
    assert outcome.decisions[0].param_map["referrer"] == "alice"
    referral = engine.referral_of("bob")
    assert referral is not None
    assert referral.referrer_id == "alice"
    assert changed_tables(before, dump(engine)) == {"events"}


def test_an_existing_customer_who_bought_before_signing_up_is_not_referred(
    engine: rk.Engine,
) -> None:
    engine.handle(purchase(event_id="evt-erin", order_id="order-erin", participant_id="erin"))
    before = dump(engine)

    outcome = engine.handle(signup("erin", engine.issue_code("alice")))

    assert outcome.reasons() == ("referral.existing_customer",)
    assert engine.referral_of("erin") is None
    assert changed_tables(before, dump(engine)) <= ONLY_THE_SIGNUP
    later = engine.handle(
        purchase(event_id="evt-erin-2", order_id="order-erin-2", participant_id="erin")
    )
    assert later.reasons() == ("purchase.not_referred",)


# -- programs that cannot run -----------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: rk.Cash(usd(0)), "cash.amount"),
        (lambda: rk.Cash(usd(-20)), "cash.amount"),
        (lambda: rk.Credit(usd("-0.01")), "credit.amount"),
        (lambda: rk.Points(0), "points.points"),
        (lambda: rk.Discount(amount=usd(0)), "discount.amount"),
    ],
    ids=["zero-cash", "negative-cash", "negative-credit", "zero-points", "zero-discount"],
)
def test_a_zero_or_negative_reward_is_refused(build: Callable[[], object], field: str) -> None:
    with pytest.raises(rk.InvalidInputError) as info:
        build()
    assert info.value.field == field
    assert field in str(info.value)


def test_a_reward_in_another_currency_is_an_invalid_program() -> None:
    eur_cash = rk.Cash(rk.Money(20, "EUR"))
    policy = rk.DoubleSided(referrer=eur_cash, referee=rk.Credit(usd(10)))

    with pytest.raises(rk.InvalidProgramError) as info:
        program(policies=[policy])

    assert_names(info.value, "double_sided.referrer", eur_cash.amount)


def test_duplicate_policy_names_are_an_invalid_program() -> None:
    policies = [rk.SingleSided(referrer=rk.Cash(usd(5))), rk.SingleSided(referrer=rk.Cash(usd(7)))]

    with pytest.raises(rk.InvalidProgramError) as info:
        program(policies=policies)

    assert_names(info.value, "program.policies[1].name", "single_sided")


def test_a_naive_effective_at_names_the_field() -> None:
    with pytest.raises(rk.InvalidInputError) as info:
        program(effective_at=NAIVE)
    assert_names(info.value, "program.effective_at", NAIVE)


def test_a_naive_effective_at_is_an_invalid_program() -> None:
    with pytest.raises(rk.InvalidProgramError):
        program(effective_at=NAIVE)


@pytest.mark.parametrize(
    ("changes", "field", "value"),
    [
        ({"timezone": "Mars/Olympus_Mons"}, "program.timezone", "Mars/Olympus_Mons"),
        ({"rounding": "ROUND_SOMETIMES"}, "program.rounding", "ROUND_SOMETIMES"),
        ({"currency": "usd"}, "program.currency", "usd"),
        ({"version": 0}, "program.version", 0),
        ({"id": " friends"}, "program.id", " friends"),
        ({"policies": []}, "program.policies", ()),
        ({"first_purchase_only": "yes"}, "program.first_purchase_only", "yes"),
    ],
    ids=["timezone", "rounding", "currency", "version", "id", "no-policies", "flag"],
)
def test_bad_program_terms_are_invalid_programs(
    changes: dict[str, Any], field: str, value: object
) -> None:
    with pytest.raises(rk.InvalidProgramError) as info:
        program(**changes)
    assert_names(info.value, field, value)


def test_a_min_order_in_another_currency_is_an_invalid_program() -> None:
    eur = rk.Money(50, "EUR")
    with pytest.raises(rk.InvalidProgramError) as info:
        program(min_order=eur)
    assert_names(info.value, "program.min_order", eur)


def test_a_negative_hold_in_days_is_an_invalid_program() -> None:
    hold = relativedelta(days=-1)
    with pytest.raises(rk.InvalidProgramError) as info:
        program(hold=hold)
    assert_names(info.value, "program.hold", hold)


def test_a_negative_hold_in_minutes_is_an_invalid_program() -> None:
    with pytest.raises(rk.InvalidProgramError):
        program(hold=relativedelta(minutes=-5))


def test_republishing_version_1_with_other_content_is_refused(bought: rk.Engine) -> None:
    richer = program(
        policies=[rk.DoubleSided(referrer=rk.Cash(usd(25)), referee=rk.Credit(usd(10)))]
    )

    info = rejected(bought, rk.InvalidProgramError, lambda: bought.publish(richer))

    assert_names(info.value, "program.version", 1)
    assert bought.program == program()


def test_a_new_engine_cannot_republish_a_stored_version_with_other_content(
    bought: rk.Engine,
) -> None:
    richer = program(hold=relativedelta(days=14))

    info = rejected(
        bought,
        rk.InvalidProgramError,
        lambda: rk.Engine(richer, bought.store, clock=rk.ManualClock(T0)),
    )

    assert_names(info.value, "program.version", 1)


def test_republishing_the_same_version_with_the_same_content_is_accepted(
    bought: rk.Engine,
) -> None:
    before = dump(bought)

    record = bought.publish(program())
    rk.Engine(program(), bought.store, clock=rk.ManualClock(T0 + timedelta(days=9)))

    assert record.version == 1
    assert dump(bought) == before


def test_publishing_another_programs_version_is_refused(bought: rk.Engine) -> None:
    info = rejected(
        bought, rk.InvalidProgramError, lambda: bought.publish(program(id="other", version=2))
    )
    assert_names(info.value, "program.id", "other")


# -- found by fuzzing: odd values that escaped as raw exceptions ------------------------

SURROGATE = "ab\ud800"


@pytest.fixture
def sql_engine() -> rk.Engine:
    """The ``engine`` fixture on a SQLite store: Alice has a code, Bob signed up with it."""
    eng = rk.Engine(program(), rk.SQLiteStore(), clock=rk.ManualClock(T0))
    eng.handle(signup("bob", eng.issue_code("alice")))
    return eng


@pytest.mark.parametrize(
    ("build", "field", "value"),
    [
        (lambda: purchase(participant_id=SURROGATE), "purchase.participant_id", SURROGATE),
        (
            lambda: signup("zed", None, email=f"{SURROGATE}@x.io"),
            "signup.email",
            f"{SURROGATE}@x.io",
        ),
        (lambda: signup("zed", SURROGATE), "signup.code", SURROGATE),
        (
            lambda: rk.Click(event_id="c", at=T0, utm_source=SURROGATE),
            "click.utm_source",
            SURROGATE,
        ),
        (
            lambda: rk.Click(event_id="c", at=T0, metadata={"k": SURROGATE}),
            "metadata['k']",
            SURROGATE,
        ),
        (
            lambda: rk.Click(event_id="c", at=T0, metadata={SURROGATE: 1}),
            f"metadata[{SURROGATE!r}]",
            SURROGATE,
        ),
        (
            lambda: rk.Purchase(
                event_id="p",
                participant_id="bob",
                order_id="o",
                amount=usd(5),
                at=T0,
                items=[rk.LineItem(sku="a", unit_price=usd(5), category=SURROGATE)],
            ),
            "line_item.category",
            SURROGATE,
        ),
    ],
    ids=["id", "email", "code", "utm", "metadata-value", "metadata-key", "category"],
)
def test_text_with_a_lone_surrogate_is_refused_before_it_reaches_the_store(
    sql_engine: rk.Engine, build: Callable[[], rk.Event], field: str, value: object
) -> None:
    info = rejected(sql_engine, rk.InvalidInputError, lambda: sql_engine.handle(build()))
    assert_names(info.value, field, value)


@pytest.mark.parametrize("value", [["link"], 3, None], ids=["list", "int", "none"])
def test_a_channel_that_is_not_a_string_is_refused(engine: rk.Engine, value: object) -> None:
    info = rejected(
        engine,
        rk.InvalidInputError,
        lambda: engine.handle(rk.Click(event_id="c", at=T0, channel=value)),  # type: ignore[arg-type]
    )
    assert_names(info.value, "click.channel", value)


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (
            lambda: rk.Purchase(
                event_id="p", participant_id="bob", order_id="o", amount=usd(5), at=T0, items=None
            ),
            "purchase.items",
        ),
        (
            lambda: rk.Refund(
                event_id="r", refund_id="r", order_id="order-1", amount=usd(5), at=T0, items=5
            ),
            "refund.items",
        ),
    ],
    ids=["purchase", "refund"],
)
def test_items_that_are_not_a_sequence_are_refused(
    bought: rk.Engine, build: Callable[[], rk.Event], field: str
) -> None:
    info = rejected(bought, rk.InvalidInputError, lambda: bought.handle(build()))
    assert info.value.field == field


@pytest.mark.parametrize("value", [["a"], 5], ids=["list", "int"])
def test_a_line_item_category_that_is_not_a_string_is_refused(value: object) -> None:
    with pytest.raises(rk.InvalidInputError) as info:
        rk.LineItem(sku="a", unit_price=usd(5), category=value)  # type: ignore[arg-type]
    assert_names(info.value, "line_item.category", value)


@pytest.mark.parametrize(
    ("method", "field"),
    [
        ("code_of", "participant_id"),
        ("balance", "participant_id"),
        ("rewards_for", "participant_id"),
        ("referral_of", "referee_id"),
        ("outcome_of", "event_id"),
        ("explain", "referee_id"),
    ],
)
@pytest.mark.parametrize("value", [["bob"], 2**63, None, SURROGATE], ids=repr)
def test_engine_lookups_refuse_ids_that_are_not_text(
    sql_engine: rk.Engine, method: str, field: str, value: object
) -> None:
    info = rejected(sql_engine, rk.InvalidInputError, lambda: getattr(sql_engine, method)(value))
    assert_names(info.value, field, value)


@pytest.mark.parametrize("method", ["reward", "release"])
def test_a_reward_id_with_a_lone_surrogate_is_an_unknown_reward(
    sql_engine: rk.Engine, method: str
) -> None:
    kwargs = {"actor": "ops"} if method == "release" else {}
    info = rejected(
        sql_engine,
        rk.UnknownRewardError,
        lambda: getattr(sql_engine, method)(SURROGATE, **kwargs),
    )
    assert_names(info.value, "reward_id", SURROGATE)


def test_a_referral_id_with_a_lone_surrogate_is_an_unknown_referral(
    sql_engine: rk.Engine,
) -> None:
    info = rejected(
        sql_engine,
        rk.UnknownReferralError,
        lambda: sql_engine.release_referral(SURROGATE, actor="ops"),
    )
    assert_names(info.value, "referral_id", SURROGATE)


def test_a_code_with_a_lone_surrogate_cannot_be_deactivated(sql_engine: rk.Engine) -> None:
    code = "é" + SURROGATE
    info = rejected(sql_engine, rk.InvalidInputError, lambda: sql_engine.deactivate_code(code))
    assert_names(info.value, "code", code)


@pytest.mark.parametrize(
    ("kwargs", "field", "value"),
    [
        ({"after": None}, "after", None),
        ({"after": -1}, "after", -1),
        ({"after": 2**63}, "after", 2**63),
        ({"limit": "10"}, "limit", "10"),
        ({"limit": 1.5}, "limit", 1.5),
        ({"limit": 2**63}, "limit", 2**63),
    ],
    ids=["after-none", "after-negative", "after-huge", "limit-str", "limit-float", "limit-huge"],
)
def test_bad_event_log_pages_are_refused(
    sql_engine: rk.Engine, kwargs: dict[str, Any], field: str, value: object
) -> None:
    info = rejected(sql_engine, rk.InvalidInputError, lambda: sql_engine.event_log(**kwargs))
    assert_names(info.value, field, value)


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda e: e.settle(batch_size=2**63), "batch_size"),
        (lambda e: e.expire_points(batch_size=2**63), "batch_size"),
        (lambda e: e.dead_letters(2**63), "limit"),
        (lambda e: e.dispatch(2**63), "limit"),
    ],
    ids=["settle", "expire_points", "dead_letters", "dispatch"],
)
def test_counts_beyond_what_a_sql_store_can_bind_are_refused(
    sql_engine: rk.Engine, call: Callable[[rk.Engine], object], field: str
) -> None:
    info = rejected(sql_engine, rk.InvalidInputError, lambda: call(sql_engine))
    assert_names(info.value, field, 2**63)


@pytest.mark.parametrize("events", [None, 5, "signup"], ids=repr)
@pytest.mark.parametrize("method", ["handle_many", "handle_stream"])
def test_batch_events_that_are_not_an_iterable_of_events_are_refused(
    engine: rk.Engine, method: str, events: object
) -> None:
    info = rejected(engine, rk.InvalidInputError, lambda: list(getattr(engine, method)(events)))
    assert_names(info.value, "events", events)


def test_non_events_in_a_batch_on_a_sql_store_are_reported_in_their_place(
    sql_engine: rk.Engine,
) -> None:
    before = dump(sql_engine)

    results = sql_engine.handle_many(["x", "y"])  # type: ignore[list-item]

    assert [type(r) for r in results] == [rk.InvalidInputError, rk.InvalidInputError]
    assert dump(sql_engine) == before


@pytest.mark.parametrize("value", [True, 5], ids=repr)
def test_retry_dead_with_ids_that_are_not_a_collection_is_refused(
    engine: rk.Engine, value: object
) -> None:
    info = rejected(engine, rk.InvalidInputError, lambda: engine.retry_dead(value))  # type: ignore[arg-type]
    assert_names(info.value, "notification_ids", value)


def test_a_retention_reaching_before_the_year_1_is_refused(engine: rk.Engine) -> None:
    info = rejected(engine, rk.InvalidInputError, lambda: engine.purge_touches(timedelta.max))
    assert_names(info.value, "older_than", timedelta.max)


def test_a_purchase_whose_hold_would_end_after_9999_is_an_invalid_event(
    engine: rk.Engine,
) -> None:
    late = datetime(9999, 12, 31, 12, 0, tzinfo=UTC)

    info = rejected(engine, rk.InvalidEventError, lambda: engine.handle(purchase(at=late)))

    assert_names(info.value, "purchase.at", late)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"history": None}, "history"),
        ({"fraud_checks": None}, "fraud_checks"),
        ({"clock": True}, "clock"),
        ({"store": None}, "store"),
    ],
    ids=["history", "fraud_checks", "clock", "store"],
)
def test_bad_engine_arguments_are_refused(kwargs: dict[str, Any], field: str) -> None:
    arguments: dict[str, Any] = {"store": rk.InMemoryStore(), **kwargs}
    with pytest.raises(rk.InvalidInputError) as info:
        rk.Engine(program(), **arguments)
    assert_names(info.value, field, kwargs[field])


@pytest.mark.parametrize(
    ("kwargs", "field", "value"),
    [
        ({"path": None}, "path", None),
        ({"path": "rk\x00.db"}, "path", "rk\x00.db"),
        ({"path": "rk\ud800.db"}, "path", "rk\ud800.db"),
        ({"busy_timeout": None}, "busy_timeout", None),
        ({"busy_timeout": "30"}, "busy_timeout", "30"),
        ({"busy_timeout": float("inf")}, "busy_timeout", float("inf")),
    ],
    ids=["path-none", "path-nul", "path-surrogate", "timeout-none", "timeout-str", "timeout-inf"],
)
def test_bad_sqlite_store_arguments_are_refused(
    kwargs: dict[str, Any], field: str, value: object
) -> None:
    with pytest.raises(rk.InvalidInputError) as info:
        rk.SQLiteStore(**kwargs)
    assert_names(info.value, field, value)


def test_a_sqlite_busy_timeout_of_nan_is_refused() -> None:
    with pytest.raises(rk.InvalidInputError) as info:
        rk.SQLiteStore(busy_timeout=float("nan"))
    assert info.value.field == "busy_timeout"


@pytest.mark.parametrize(
    ("changes", "field", "value"),
    [
        ({"rounding": ["ROUND_UP"]}, "program.rounding", ["ROUND_UP"]),
        ({"timezone": "x" * 300}, "program.timezone", "x" * 300),
        ({"id": SURROGATE}, "program.id", SURROGATE),
    ],
    ids=["rounding-list", "timezone-too-long", "id-surrogate"],
)
def test_more_bad_program_terms_are_invalid_programs(
    changes: dict[str, Any], field: str, value: object
) -> None:
    with pytest.raises(rk.InvalidInputError) as info:
        program(**changes)
    assert_names(info.value, field, value)


@pytest.mark.parametrize(
    ("call", "field", "value"),
    [
        (lambda: rk.Money.from_minor(2**200, "USD"), "units", 2**200),
        (lambda: rk.Money.rounded(None, "USD"), "amount", None),  # type: ignore[arg-type]
        (lambda: rk.Money.rounded(Decimal("Infinity"), "USD"), "amount", Decimal("Infinity")),
        (lambda: usd(10).percent_of(None), "percent", None),  # type: ignore[arg-type]
        (lambda: usd(10).percent_of(2**200), "percent", 2**200),  # type: ignore[arg-type]
        (lambda: usd(10).scaled(1.5), "factor", 1.5),  # type: ignore[arg-type]
        (lambda: usd(10).scaled(Decimal("1e999999")), "factor", Decimal("1e999999")),
        (lambda: usd(10).percent_of(Decimal(5), rounding="UP"), "rounding", "UP"),
    ],
    ids=[
        "from-minor-huge",
        "rounded-none",
        "rounded-inf",
        "percent-none",
        "percent-huge",
        "scaled-float",
        "scaled-huge",
        "rounding",
    ],
)
def test_bad_money_computations_are_refused(
    call: Callable[[], object], field: str, value: object
) -> None:
    with pytest.raises(rk.InvalidInputError) as info:
        call()
    assert_names(info.value, field, value)


# -- the remaining public functions ---------------------------------------------------------
def _signed(body: bytes, secret: bytes = b"s3cret", at: datetime = T0) -> str:
    import hashlib
    import hmac

    t = int(at.timestamp())
    mac = hmac.new(secret, f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def test_the_signature_helper_matches_what_verify_webhook_accepts() -> None:
    body = b'{"id": "n1"}'
    assert rk.verify_webhook(body, _signed(body), b"s3cret", now=T0) == {"id": "n1"}


@pytest.mark.parametrize(
    ("change", "error", "field"),
    [
        ({"signature": None}, rk.InvalidSignatureError, "X-Referralkit-Signature"),
        ({"signature": b"t=1,v1=ab"}, rk.InvalidSignatureError, "X-Referralkit-Signature"),
        ({"signature": "t=1767603600,v1=é"}, rk.InvalidSignatureError, "X-Referralkit-Signature"),
        ({"tolerance": None}, rk.InvalidInputError, "tolerance"),
        ({"tolerance": 300}, rk.InvalidInputError, "tolerance"),
        ({"body": "not bytes"}, rk.InvalidInputError, "body"),
        ({"secret": "not bytes"}, rk.InvalidInputError, "secret"),
    ],
)
def test_verify_webhook_refuses_arguments_of_the_wrong_type(
    change: dict[str, Any], error: type[rk.ReferralKitError], field: str
) -> None:
    body = b'{"id": "n1"}'
    arguments: dict[str, Any] = {
        "body": body,
        "signature": _signed(body),
        "secret": b"s3cret",
        "now": T0,
        "tolerance": timedelta(minutes=5),
    }
    arguments.update(change)
    with pytest.raises(error) as info:
        rk.verify_webhook(**arguments)
    assert info.value.field == field


def test_a_signed_body_that_is_not_json_is_invalid_input() -> None:
    body = b"\xff not json"
    with pytest.raises(rk.InvalidInputError) as info:
        rk.verify_webhook(body, _signed(body), b"s3cret", now=T0)
    assert info.value.field == "body"


@pytest.mark.parametrize("delta", [None, 5, "1h", timedelta.max, relativedelta(years=9000)])
def test_a_manual_clock_refuses_a_bad_or_out_of_range_step(delta: Any) -> None:
    clock = rk.ManualClock(T0)
    with pytest.raises(rk.InvalidInputError) as info:
        clock.advance(delta)
    assert info.value.field == "delta"
    assert clock.now() == T0  # not moved


def test_a_manual_clock_still_steps_by_a_relativedelta() -> None:
    clock = rk.ManualClock(T0)
    assert clock.advance(relativedelta(months=1)) == T0 + relativedelta(months=1)


@pytest.mark.parametrize("event", [None, "signup", 5])
def test_event_key_of_something_that_is_not_an_event_is_invalid_input(event: Any) -> None:
    with pytest.raises(rk.InvalidInputError) as info:
        rk.event_key(event)
    assert info.value.field == "event"


@pytest.mark.parametrize("path", [None, b"program.toml", 5])
def test_load_program_refuses_a_path_that_is_not_a_path(path: Any) -> None:
    with pytest.raises(rk.InvalidProgramError) as info:
        rk.load_program(path)
    assert info.value.field == "path"


@pytest.mark.parametrize("number", [float("nan"), float("inf"), float("-inf")])
def test_metadata_numbers_must_be_finite(number: float) -> None:
    """JSON has no NaN or infinity (and NaN is not equal to itself, so such an event would
    not equal its own stored copy)."""
    with pytest.raises(rk.InvalidEventError) as info:
        rk.Click(event_id="c", at=T0, metadata={"score": [1.5, number]})
    assert info.value.field == "metadata['score'][1]"
    assert rk.Click(event_id="c", at=T0, metadata={"score": [1.5, 2]}).metadata["score"] == [1.5, 2]
