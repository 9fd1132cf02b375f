"""Declarative programs: Program.from_dict / to_dict, load_program, and key-path errors."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import attrs
import pytest

import referralkit as rk
from referralkit.policies import (
    PolicyContext,
    PolicyResult,
    RewardPolicy,
    register_policy,
)


def program(*policies: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "spring",
        "effective_at": "2026-01-05T00:00:00+00:00",
        "currency": "USD",
        "hold": {"days": 14},
        "policies": list(policies)
        or [{"type": "double_sided", "referrer": cash("10"), "referee": cash("5")}],
    }


def cash(amount: Any) -> dict[str, Any]:
    return {"kind": "cash", "amount": amount}


TIERED = {
    "type": "tiered",
    "tiers": [
        {"min_referrals": 1, "reward": cash("10.00")},
        {"min_referrals": 3, "reward": cash("30.00")},
    ],
}


def error(data: dict[str, Any]) -> rk.InvalidProgramError:
    with pytest.raises(rk.InvalidProgramError) as info:
        rk.Program.from_dict(data)
    return info.value


def test_a_program_is_built_from_plain_data():
    p = rk.Program.from_dict(program(TIERED))
    assert p.effective_at == datetime(2026, 1, 5, tzinfo=UTC)
    (tiered,) = p.policies
    assert isinstance(tiered, rk.policies.Tiered)
    assert tiered.tiers[1].reward == rk.Cash(rk.Money(30, "USD"))


def test_to_dict_round_trips_with_the_same_digest():
    p = rk.Program.from_dict(program(TIERED, {"type": "revenue_share", "percent": "15"}))
    data = json.loads(json.dumps(p.to_dict()))
    again = rk.Program.from_dict(data)
    assert again == p
    assert again.digest == p.digest
    assert data["policies"][1] == {
        "type": "revenue_share",
        "percent": "15",
        "duration": {"years": 1},
        "as": "cash",
        "name": "revenue_share",
    }


def test_the_key_path_of_a_negative_amount_is_named():
    bad = copy.deepcopy(TIERED)
    bad["tiers"][0]["reward"]["amount"] = "-5"
    exc = error(program({"type": "single_sided", "referrer": cash(1), "name": "a"}, bad))
    assert (exc.field, exc.value, exc.problem) == (
        "policies[1].tiers[0].reward.amount",
        "-5",
        "must be > 0",
    )
    assert str(exc) == "policies[1].tiers[0].reward.amount='-5': must be > 0"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda t: t["tiers"].reverse(), "policies[0].tiers[1].min_referrals"),
        (lambda t: t["tiers"][1].update(min_referrals=1), "policies[0].tiers[1].min_referrals"),
        (lambda t: t["tiers"][0].update(min_referrals="1"), "policies[0].tiers[0].min_referrals"),
        (lambda t: t["tiers"][0].update(min_referrals=0), "policies[0].tiers[0].min_referrals"),
        (
            lambda t: t["tiers"][0]["reward"].update(currency="EUR"),
            "policies[0].tiers[0].reward.currency",
        ),
        (
            lambda t: t["tiers"][0]["reward"].update(amount=1.5),
            "policies[0].tiers[0].reward.amount",
        ),
        (
            lambda t: t["tiers"][0]["reward"].update(amount="1.234"),
            "policies[0].tiers[0].reward.amount",
        ),
        (lambda t: t["tiers"][0]["reward"].update(kind="gold"), "policies[0].tiers[0].reward.kind"),
        (
            lambda t: t["tiers"][0]["reward"].update(colour="red"),
            "policies[0].tiers[0].reward.colour",
        ),
        (lambda t: t["tiers"][0].pop("reward"), "policies[0].tiers[0].reward"),
        (lambda t: t.update(tiers="many"), "policies[0].tiers"),
        (lambda t: t.update(type="tierd"), "policies[0].type"),
        (lambda t: t.pop("type"), "policies[0].type"),
        (lambda t: t.update(steps=1), "policies[0].steps"),
        (lambda t: t.pop("tiers"), "policies[0].tiers"),
        (lambda t: t.update(side="both"), "policies[0].side"),
        (lambda t: t.update(name=7), "policies[0].name"),
    ],
)
def test_each_bad_value_names_its_key_path(change, field):
    bad = copy.deepcopy(TIERED)
    change(bad)
    assert error(program(bad)).field == field


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda p: p.update(currency="usd"), "currency"),
        (lambda p: p.update(currency="XYZ"), "currency"),
        (lambda p: p.pop("policies"), "policies"),
        (lambda p: p.update(policies={}), "policies"),
        (lambda p: p.update(effective_at="yesterday"), "effective_at"),
        (lambda p: p.update(effective_at="2026-01-05T00:00:00"), "effective_at"),
        (lambda p: p.update(hold={"fortnights": 1}), "hold.fortnights"),
        (lambda p: p.update(hold={"days": -1}), "hold"),
        (lambda p: p.update(min_order={"amount": "5", "currency": "EUR"}), "min_order.currency"),
        (lambda p: p.update(timezone="Mars/Olympus"), "timezone"),
        (lambda p: p.update(version=0), "version"),
        (lambda p: p.update(first_purchase_only="yes"), "first_purchase_only"),
        (lambda p: p.update(colour="red"), "program.colour"),
    ],
)
def test_bad_program_terms_name_their_key(change, field):
    data = program()
    change(data)
    assert error(data).field == field


def test_an_unknown_condition_attribute_names_its_path():
    data = program(
        {
            "type": "when",
            "condition": {
                "all": [
                    {"attribute": "sale.amount", "op": ">=", "value": "50"},
                    {"attribute": "referee.shoe_size", "op": "==", "value": "42"},
                ]
            },
            "policy": {"type": "single_sided", "referrer": cash("10")},
        }
    )
    exc = error(data)
    assert exc.field == "policies[0].condition.all[1].attribute"
    assert exc.value == "referee.shoe_size"


def test_conditions_and_combinators_round_trip():
    data = program(
        {
            "type": "first_match",
            "policies": [
                {
                    "type": "when",
                    "condition": {
                        "any": [
                            {"attribute": "sale.amount", "op": ">=", "value": "100"},
                            {"attribute": "referral.channel", "op": "in", "value": ["email"]},
                        ]
                    },
                    "policy": {"type": "single_sided", "referrer": cash(30), "name": "big"},
                },
                {"type": "single_sided", "referrer": cash(5), "name": "small"},
            ],
        },
        {
            "type": "stack",
            "policies": [
                {"type": "per_item", "referee": {"kind": "points", "points": 5}, "skus": ["a"]},
                {"type": "escalating", "first": cash(5), "step": "5", "ceiling": "20"},
                {"type": "hybrid", "fixed": cash(5), "percent": 5, "duration": "lifetime"},
            ],
        },
    )
    data["policies"][1]["policies"][2]["name"] = "hybrid"
    # A stack's policies share a trigger: make them all pay on every purchase.
    data["policies"][1]["policies"][0]["trigger"] = "every_purchase"
    data["policies"][1]["policies"].pop(1)
    p = rk.Program.from_dict(data)
    again = rk.Program.from_dict(json.loads(json.dumps(p.to_dict())))
    assert again == p
    assert again.digest == p.digest


def test_load_program_reads_toml_and_json(tmp_path):
    toml = tmp_path / "p.toml"
    toml.write_text(
        """
id = "spring"
effective_at = 2026-01-05T00:00:00Z
currency = "USD"
hold = { days = 14 }

[[policies]]
type = "revenue_share"
percent = 2.5
duration = "lifetime"
""",
        "utf-8",
    )
    p = rk.load_program(toml)
    assert p.policies[0].percent == Decimal("2.5")
    assert p.policies[0].duration is None
    js = tmp_path / "p.json"
    js.write_text(json.dumps(p.to_dict()), "utf-8")
    assert rk.load_program(js) == p


@pytest.mark.parametrize(
    ("name", "text"), [("p.yaml", "id: x"), ("p.toml", "id = "), ("p.json", "{")]
)
def test_load_program_refuses_other_files(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, "utf-8")
    with pytest.raises(rk.InvalidProgramError) as info:
        rk.load_program(path)
    assert info.value.field == "path"


@attrs.frozen
class EveryNth:
    bonus: rk.RewardValue
    every: int = 5
    name: str = "every_nth"
    trigger: rk.Trigger = rk.Trigger.FIRST_PURCHASE

    def needs(self) -> frozenset[rk.Counter]:
        return frozenset({rk.Counter.REFERRER_SUCCESSFUL_REFERRALS})

    def check(self, currency: str) -> None:
        pass

    def evaluate(self, ctx: PolicyContext) -> PolicyResult:
        return PolicyResult()


def test_host_apps_register_their_own_policy_types():
    register_policy("every_nth", EveryNth, {"bonus": "reward", "every": "int", "name": "str"})
    assert isinstance(EveryNth(rk.Points(5)), RewardPolicy)
    data = program({"type": "every_nth", "bonus": {"kind": "badge", "name": "gold"}, "every": 3})
    p = rk.Program.from_dict(data)
    assert p.policies == (EveryNth(rk.Badge("gold"), 3),)
    assert rk.Program.from_dict(p.to_dict()) == p
    assert error(program({"type": "every_nth", "bonus": cash(1), "every": "3"})).field == (
        "policies[0].every"
    )


def test_an_unregistered_policy_cannot_be_written():
    @attrs.frozen
    class Unregistered(EveryNth):
        pass

    p = rk.Program(
        id="p",
        effective_at=datetime(2026, 1, 1, tzinfo=UTC),
        currency="USD",
        policies=[Unregistered(rk.Points(1))],
    )
    with pytest.raises(rk.InvalidProgramError) as info:
        p.to_dict()
    assert info.value.field == "policies[0]"
