"""Identity: per-domain email rules, disposable domains and keyed hashes."""

from __future__ import annotations

import hashlib
import hmac

import pytest

import referralkit as rk
from referralkit.attribution import (
    DEFAULT_EMAIL_RULES,
    EmailRules,
    disposable_domains,
    is_disposable_email,
    keyed_hash,
    normalise_email,
)

KEY = b"k" * 32


# -- EmailRules --------------------------------------------------------------------------


def test_the_default_rules_are_todays_behaviour() -> None:
    assert EmailRules() == DEFAULT_EMAIL_RULES
    assert DEFAULT_EMAIL_RULES.dotless_domains == {"gmail.com"}
    assert DEFAULT_EMAIL_RULES.plus_tag is True
    assert dict(DEFAULT_EMAIL_RULES.aliases) == {"googlemail.com": "gmail.com"}
    assert normalise_email("A.Lice+x@GoogleMail.com") == "alice@gmail.com"


@pytest.mark.parametrize(
    ("email", "expected"),
    [
        ("a.lice+x@corp.example", "alice+x@corp.example"),
        ("a.lice+x@old.example", "alice+x@corp.example"),
        ("a.lice+x@gmail.com", "a.lice+x@gmail.com"),  # not dotless under these rules
        ("a.lice+x@elsewhere.example", "a.lice+x@elsewhere.example"),
    ],
)
def test_rules_are_configurable_per_domain(email: str, expected: str) -> None:
    rules = EmailRules(
        dotless_domains={"Corp.Example"}, plus_tag=False, aliases={"old.example": "corp.example"}
    )
    assert normalise_email(email, rules) == expected


def test_alias_chains_are_followed_so_one_pass_is_enough() -> None:
    rules = EmailRules(aliases={"a.example": "b.example", "b.example": "c.example"})
    assert rules.aliases["a.example"] == "c.example"
    once = normalise_email("x@a.example", rules)
    assert once == "x@c.example"
    assert normalise_email(once, rules) == once


def test_an_alias_loop_is_refused() -> None:
    with pytest.raises(rk.InvalidInputError) as info:
        EmailRules(aliases={"a.example": "b.example", "b.example": "a.example"})
    assert info.value.field == "aliases"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"plus_tag": "yes"}, "plus_tag"), ({"dotless_domains": "gmail.com"}, "dotless_domains")],
)
def test_bad_rules_are_refused(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(rk.InvalidInputError) as info:
        EmailRules(**kwargs)  # type: ignore[arg-type]
    assert info.value.field == field


def test_rules_are_hashable_and_compare_by_value() -> None:
    a = EmailRules(aliases={"x.example": "y.example"})
    b = EmailRules(aliases={"x.example": "y.example"})
    assert a == b
    assert hash(a) == hash(b)
    assert a != DEFAULT_EMAIL_RULES


# -- disposable domains ------------------------------------------------------------------


@pytest.mark.parametrize(
    "email",
    [
        "x@mailinator.com",
        "X@MAILINATOR.COM",
        " x@yopmail.com ",
        "x@eu.mailinator.com",
        "x@guerrillamail.com",
        "x@10minutemail.com",
    ],
)
def test_shipped_disposable_domains_are_recognised(email: str) -> None:
    assert is_disposable_email(email)


@pytest.mark.parametrize(
    "email",
    ["x@gmail.com", "x@example.com", "x@notmailinator.example", "x@mailinator.com.example", "x"],
)
def test_other_domains_are_not_disposable(email: str) -> None:
    assert not is_disposable_email(email)


def test_the_list_can_be_extended_per_call() -> None:
    assert not is_disposable_email("x@burner.example")
    assert is_disposable_email("x@burner.example", extra_domains=["Burner.Example"])
    assert is_disposable_email("x@a.burner.example", extra_domains=("burner.example",))


def test_the_shipped_list_has_a_few_hundred_lower_case_domains() -> None:
    domains = disposable_domains()
    assert 250 <= len(domains) <= 1000
    assert all(d == d.strip().lower() and "." in d and "@" not in d for d in domains)
    assert not {"gmail.com", "outlook.com", "yahoo.com", "icloud.com"} & domains


# -- keyed_hash --------------------------------------------------------------------------


def test_a_keyed_hash_is_hmac_sha256_hex() -> None:
    expected = hmac.new(KEY, b"203.0.113.7", hashlib.sha256).hexdigest()
    assert keyed_hash("203.0.113.7", KEY) == expected
    assert keyed_hash(b"203.0.113.7", KEY) == expected
    assert len(expected) == 64


def test_equal_values_hash_equal_and_other_keys_differ() -> None:
    assert keyed_hash("device-1", KEY) == keyed_hash("device-1", KEY)
    assert keyed_hash("device-1", KEY) != keyed_hash("device-2", KEY)
    assert keyed_hash("device-1", KEY) != keyed_hash("device-1", b"j" * 32)


def test_the_raw_value_and_the_key_do_not_appear_in_the_hash() -> None:
    digest = keyed_hash("203.0.113.7", KEY)
    assert "203" not in digest
    assert KEY.hex() not in digest


@pytest.mark.parametrize("key", [b"", b"short", b"k" * 31, "k" * 32])
def test_a_short_or_text_key_is_refused_without_showing_it(key: object) -> None:
    with pytest.raises(rk.InvalidInputError) as info:
        keyed_hash("x", key)  # type: ignore[arg-type]
    assert info.value.field == "key"
    assert "kkkkk" not in str(info.value)


def test_a_value_that_is_not_text_or_bytes_is_refused() -> None:
    with pytest.raises(rk.InvalidInputError) as info:
        keyed_hash(42, KEY)  # type: ignore[arg-type]
    assert info.value.field == "value"
