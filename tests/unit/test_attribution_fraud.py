"""Fraud and eligibility checks: pure functions returning allow / flag / hold / block."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

import referralkit as rk
from referralkit.attribution import (
    DEFAULT_IDENTITY_ACTIONS,
    FraudAction,
    FraudCheck,
    FraudContext,
    FraudVerdict,
    IdentityFacts,
    check_circular,
    check_same_identity,
    check_velocity,
    combine,
    keyed_hash,
)

KEY = b"s" * 32
ALLOW, FLAG, HOLD, BLOCK = FraudAction.ALLOW, FraudAction.FLAG, FraudAction.HOLD, FraudAction.BLOCK


def h(value: str) -> str:
    return keyed_hash(value, KEY)


# -- FraudVerdict and combine ------------------------------------------------------------


def test_actions_are_ordered_from_mildest_to_strictest() -> None:
    assert [a.severity for a in (ALLOW, FLAG, HOLD, BLOCK)] == [0, 1, 2, 3]


def test_a_plain_verdict_allows() -> None:
    assert FraudVerdict() == FraudVerdict.allow() == FraudVerdict(ALLOW, ())
    assert FraudVerdict.allow().allowed
    assert FraudVerdict(FLAG, ["x.y"]).allowed
    assert not FraudVerdict(HOLD, ["x.y"]).allowed


def test_a_verdict_accepts_action_names_and_drops_repeated_reasons() -> None:
    verdict = FraudVerdict("hold", ["a.b", "c.d", "a.b"])
    assert verdict == FraudVerdict(HOLD, ("a.b", "c.d"))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"action": "deny"}, "action"),
        ({"action": 3}, "action"),
        ({"reasons": "fraud.same_ip"}, "reasons"),
        ({"reasons": [""]}, "reasons"),
    ],
)
def test_a_bad_verdict_is_refused(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(rk.InvalidInputError) as info:
        FraudVerdict(**kwargs)  # type: ignore[arg-type]
    assert info.value.field == field


@pytest.mark.parametrize(
    ("actions", "strictest"),
    [
        ([], ALLOW),
        ([ALLOW, ALLOW], ALLOW),
        ([FLAG, ALLOW], FLAG),
        ([ALLOW, HOLD, FLAG], HOLD),
        ([BLOCK, HOLD, FLAG, ALLOW], BLOCK),
        ([FLAG, BLOCK], BLOCK),
    ],
)
def test_the_strictest_action_wins(actions: list[FraudAction], strictest: FraudAction) -> None:
    verdicts = [
        FraudVerdict(a, [f"r.{i}"] if a is not ALLOW else []) for i, a in enumerate(actions)
    ]
    assert combine(verdicts).action is strictest


def test_reasons_are_concatenated_in_order_without_repeats() -> None:
    combined = combine(
        [
            FraudVerdict(FLAG, ["fraud.same_ip"]),
            FraudVerdict(),
            FraudVerdict(HOLD, ["fraud.velocity", "fraud.same_ip"]),
        ]
    )
    assert combined == FraudVerdict(HOLD, ("fraud.same_ip", "fraud.velocity"))


# -- check_same_identity -----------------------------------------------------------------

ALICE = IdentityFacts(
    email="alice@gmail.com",
    device=h("device-a"),
    payment_fingerprint=h("card-a"),
    payout_account=h("iban-a"),
    ip=h("203.0.113.1"),
)


@pytest.mark.parametrize(
    ("referee", "action", "reasons"),
    [
        (IdentityFacts(), ALLOW, ()),
        (IdentityFacts(email="bob@example.com", ip=h("198.51.100.9")), ALLOW, ()),
        (IdentityFacts(email="A.Lice+promo@googlemail.com"), BLOCK, ("fraud.same_email",)),
        (IdentityFacts(device=h("device-a")), HOLD, ("fraud.same_device",)),
        (
            IdentityFacts(payment_fingerprint=h("card-a")),
            BLOCK,
            ("fraud.same_payment_fingerprint",),
        ),
        (IdentityFacts(payout_account=h("iban-a")), BLOCK, ("fraud.same_payout_account",)),
        (IdentityFacts(ip=h("203.0.113.1")), FLAG, ("fraud.same_ip",)),
        (
            IdentityFacts(device=h("device-a"), ip=h("203.0.113.1")),
            HOLD,
            ("fraud.same_device", "fraud.same_ip"),
        ),
    ],
)
def test_shared_identity_facts_are_caught(
    referee: IdentityFacts, action: FraudAction, reasons: tuple[str, ...]
) -> None:
    assert check_same_identity(ALICE, referee) == FraudVerdict(action, reasons)


def test_missing_facts_never_match() -> None:
    assert check_same_identity(IdentityFacts(), IdentityFacts()) == FraudVerdict.allow()


def test_the_action_per_fact_is_configurable() -> None:
    referee = IdentityFacts(ip=h("203.0.113.1"), device=h("device-a"))
    strict = {**DEFAULT_IDENTITY_ACTIONS, "ip": "block"}
    assert check_same_identity(ALICE, referee, actions=strict).action is BLOCK
    ignore_ip = {"device": FLAG}
    assert check_same_identity(ALICE, referee, actions=ignore_ip) == FraudVerdict(
        FLAG, ("fraud.same_device",)
    )


def test_email_rules_decide_which_addresses_are_one_inbox() -> None:
    referee = IdentityFacts(email="alice+x@gmail.com")
    no_tags = rk.attribution.EmailRules(plus_tag=False)
    assert check_same_identity(ALICE, referee).action is BLOCK
    assert check_same_identity(ALICE, referee, email_rules=no_tags).action is ALLOW


@pytest.mark.parametrize("field", ["device", "payment_fingerprint", "payout_account", "ip"])
def test_raw_values_are_refused_where_a_keyed_hash_belongs(field: str) -> None:
    with pytest.raises(rk.InvalidInputError) as info:
        IdentityFacts(**{field: "203.0.113.1"})
    assert info.value.field == f"identity.{field}"


def test_an_email_without_at_is_refused() -> None:
    with pytest.raises(rk.InvalidInputError) as info:
        IdentityFacts(email="alice")
    assert info.value.field == "identity.email"


# -- check_velocity ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "limit", "action"),
    [(0, 5, ALLOW), (4, 5, ALLOW), (5, 5, ALLOW), (6, 5, HOLD), (100, 5, HOLD), (2, 1, HOLD)],
)
def test_velocity_allows_up_to_the_limit_inclusive(
    count: int, limit: int, action: FraudAction
) -> None:
    verdict = check_velocity(count, limit)
    assert verdict.action is action
    assert verdict.reasons == (() if action is ALLOW else ("fraud.velocity",))


def test_the_velocity_action_is_configurable() -> None:
    assert check_velocity(6, 5, action="flag") == FraudVerdict(FLAG, ("fraud.velocity",))


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ((-1, 5), "signups_in_window"),
        ((1, 0), "limit"),
        ((True, 5), "signups_in_window"),
        ((1, 2.5), "limit"),
    ],
)
def test_bad_velocity_figures_are_refused(args: tuple[object, object], field: str) -> None:
    with pytest.raises(rk.InvalidInputError) as info:
        check_velocity(*args)  # type: ignore[arg-type]
    assert info.value.field == field


# -- check_circular ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("referrer", "referee", "referrer_of_referrer", "expected"),
    [
        ("alice", "bob", None, FraudVerdict()),
        ("alice", "bob", "carol", FraudVerdict()),
        ("alice", "bob", "bob", FraudVerdict(BLOCK, ("fraud.circular",))),
        ("alice", "alice", None, FraudVerdict(BLOCK, ("fraud.self_referral",))),
    ],
)
def test_circular_referrals_are_blocked(
    referrer: str, referee: str, referrer_of_referrer: str | None, expected: FraudVerdict
) -> None:
    assert check_circular(referrer, referee, referrer_of_referrer) == expected


def test_circular_check_refuses_bad_ids() -> None:
    with pytest.raises(rk.InvalidInputError) as info:
        check_circular("alice", "", None)
    assert info.value.field == "referee_id"


# -- FraudCheck --------------------------------------------------------------------------

START = datetime(2026, 1, 5, tzinfo=UTC)


class BlockNewDomains:
    """A host's check: block referees on one domain."""

    def check(self, context: FraudContext) -> FraudVerdict:
        email = context.referee.email or ""
        if email.endswith("@new.example"):
            return FraudVerdict(BLOCK, ["host.new_domain"])
        return FraudVerdict.allow()


def test_a_host_check_satisfies_the_protocol_and_combines_with_built_ins() -> None:
    host: FraudCheck = BlockNewDomains()
    assert isinstance(host, FraudCheck)
    context = FraudContext(
        program_id="friends",
        referrer_id="alice",
        referee_id="bob",
        at=START,
        referrer=ALICE,
        referee=IdentityFacts(email="bob@new.example", ip=h("203.0.113.1")),
    )
    verdict = combine(
        [
            check_same_identity(context.referrer, context.referee),
            check_velocity(1, 10),
            host.check(context),
        ]
    )
    assert verdict == FraudVerdict(BLOCK, ("fraud.same_ip", "host.new_domain"))


def test_a_fraud_context_needs_an_aware_time() -> None:
    with pytest.raises(rk.NaiveDatetimeError):
        FraudContext(
            program_id="p",
            referrer_id="a",
            referee_id="b",
            at=datetime(2026, 1, 5),
        )
