"""Decisions: small records that explain what the engine and each policy decided and why.

The text of a decision is rendered only when asked
([`Decision.message`][referralkit.Decision.message]), so a decision costs a few fields per
event and can be stored and explained weeks later.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType

import attrs

from referralkit._values._fastinit import fast_init

__all__ = ["Decision", "Verdict"]


class Verdict(enum.StrEnum):
    """What a decision concluded."""

    GRANTED = "granted"
    """A reward was granted."""
    CLAMPED = "clamped"
    """A reward was granted, reduced by a cap or budget."""
    SKIPPED = "skipped"
    """Nothing was granted, by rule (not qualifying, not the trigger, capped to zero)."""
    REFUSED = "refused"
    """A referral could not be made (unknown code, self-referral, ...)."""
    NOTED = "noted"
    """Something was recorded (a referral made, an order recorded, a reward reversed)."""


_TEMPLATES: Mapping[str, str] = MappingProxyType(
    {
        "referral.created": "{referee} was referred by {referrer} with code {code}",
        "referral.unknown_code": "no referrer owns code {code!r}",
        "referral.self_referral": "{referee} used their own code ({via})",
        "referral.already_referred": "{referee} was already referred by {referrer}",
        "referral.existing_customer": "{referee} was already a customer before this sign-up",
        "referral.no_code": "the sign-up carried no referral code",
        "referral.code_expired": "code {code!r} expired at {expires_at}",
        "referral.code_exhausted": "code {code!r} was used its maximum of {max_uses} times",
        "referral.code_deactivated": "code {code!r} was deactivated",
        "referral.invalid_token": "the referral link's token was refused: {problem}",
        "referral.no_touch_in_window": "no touch counted within the attribution window",
        "referral.blocked": "a fraud check blocked the referral ({reasons})",
        "referral.held": "the referral is held for review ({reasons})",
        "referral.rejected": "the referral {referral_id} was rejected by an operator",
        "referral.flagged": "the referral was flagged for review ({reasons})",
        "referral.reattributed": "{actor} made {new_referrer} the referrer: {reason}",
        "referral.check_overridden": (
            "the fraud checks said {action} ({reasons}); the operator's decision stands"
        ),
        "referral.existing_customer_overridden": (
            "{referee} was already a customer; the operator's decision stands"
        ),
        "referral.held_later": (
            "referral {referral_id} is held: its referrer signed up with the referee's "
            "email ({reasons})"
        ),
        "attribution.deferred": "the referrer is chosen at the first purchase",
        "attribution.not_at_purchase": (
            "code {code!r} at checkout does not bind: this program binds at sign-up"
        ),
        "attribution.no_touches": (
            "no touch is on record for {referee}; the outcome of their sign-up says why"
        ),
        "touch.won": "{kind} by {referrer} at {at} via {channel} won ({reason})",
        "touch.lost": "{kind} by {referrer} at {at} via {channel} lost ({reason})",
        "touch.ignored": "{kind} by {referrer} at {at} via {channel} did not count ({reason})",
        "touch.not_binding": (
            "{kind} by {referrer} was recorded; {referee} is bound to {bound} ({reason})"
        ),
        "signup.repeated": "{participant} had already signed up; nothing new was recorded",
        "purchase.not_referred": "{participant} was not referred, so the order earns nothing",
        "purchase.before_referral": (
            "{participant} paid before they were referred, so the order earns nothing"
        ),
        "purchase.converted": (
            "the order of {amount} counts as {converted} (rate {rate} of {rate_on})"
        ),
        "order.repeated": "order {order_id} was already recorded; it earns nothing again",
        "refund.repeated": "refund {refund_id} was already recorded; it reverses nothing again",
        "chargeback.repeated": (
            "chargeback {chargeback_id} was already recorded; it reverses nothing again"
        ),
        "qualify.not_first_purchase": (
            "only the referee's first purchase qualifies; this was purchase #{number}"
        ),
        "qualify.below_minimum": "order total {amount} is below the minimum of {minimum}",
        "qualify.already_converted": "the referral already earned its first-purchase reward",
        "policy.granted": "{role} {participant} earns {value}",
        "policy.not_trigger": "pays on {trigger}, not on {event}",
        "reward.reversed": "{quantity} of reward {reward_id} reversed ({cause})",
        "reward.nothing_to_reverse": "order {order_id} had no reward left to reverse",
        "condition.false": "the condition was not met: {clause}",
        "tiered.below_first_tier": "referral #{n} is below the first tier (from #{first})",
        "per_item.no_items": "no line item of the order qualifies",
        "per_item.capped": "{role} rewards capped at {cap} of {units} qualifying units",
        "revenue_share.ended": "the revenue share ended at {until}",
        "revenue_share.too_small": "{percent}% of {amount} rounds to nothing",
        "first_match.none": "no policy matched",
        "milestone.reached": "{participant} reached milestone {milestone} ({threshold}): {value}",
        "milestone.none": "referral #{n} reaches no milestone (next at {next})",
        "milestone.already_granted": (
            "{participant} was granted milestone {milestone} before; it is granted once"
        ),
        "points.none": "{amount} earns no whole point",
        "precedence.not_chosen": "another conditional reward was chosen by {rule}: {chosen}",
        "cap.referee_purchases": (
            "the referee's purchases earn rewards at most {limit} times ({rewarded} so far)"
        ),
        "cap.referee_window": "rewards are paid until {until}, {first} plus the window",
        "tiered.top_up": (
            "{participant} reached tier {tier}: a top-up of {value} for {earlier} earlier referrals"
        ),
        "cap.clamped": (
            "{role} {participant}: {requested} clamped to {granted} by the {cap} cap of "
            "{limit} ({spent} already granted)"
        ),
        "cap.reached": (
            "{role} {participant}: {requested} not granted, the {cap} cap of {limit} is "
            "reached ({spent} already granted)"
        ),
        "budget.clamped": (
            "{role} {participant}: {requested} clamped to {granted} by the program budget "
            "of {limit} ({spent} already spent)"
        ),
        "budget.exhausted": (
            "{role} {participant}: {requested} not granted, the program budget of {limit} "
            "is spent ({spent})"
        ),
    }
)


@fast_init  # made on most events: a faster __init__, same parameters (see _fastinit)
@attrs.frozen
class Decision:
    """One decision, with a reason code and the parameters its explanation needs.

    Attributes:
        source: Who decided: ``"engine"``, ``"attribution"``, ``"fraud"``,
            ``"qualification"``, ``"caps"``, ``"ledger"``, ``"operator"`` or a policy's
            name.
        verdict: What was concluded.
        code: A stable reason code such as ``"referral.self_referral"``; match on it.
        params: The values the explanation mentions, as strings.
    """

    source: str
    verdict: Verdict
    code: str
    params: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, source: str, verdict: Verdict, code: str, /, **params: object) -> Decision:
        """A decision whose parameters are given as keywords (converted to strings)."""
        return cls(
            source,
            verdict,
            code,
            tuple([(k, v if type(v) is str else str(v)) for k, v in params.items()]),
        )

    @property
    def param_map(self) -> dict[str, str]:
        """The parameters as a dict."""
        return dict(self.params)

    def message(self) -> str:
        """The explanation in English, rendered now."""
        template = _TEMPLATES.get(self.code)
        params = self.param_map
        if template is None:
            detail = ", ".join(f"{k}={v}" for k, v in self.params)
            return f"{self.code}{': ' + detail if detail else ''}"
        try:
            return template.format(**params)
        except (KeyError, IndexError):
            return f"{self.code}: {params}"

    def __str__(self) -> str:
        return f"[{self.source}] {self.verdict}: {self.message()}"
