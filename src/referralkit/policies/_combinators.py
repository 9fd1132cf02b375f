"""Combinators: a condition on a policy (``when``), all of several (``Stack``), or the
first that grants (``FirstMatch``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal

import attrs

from referralkit._errors import InvalidProgramError
from referralkit._values.decisions import Decision, Verdict
from referralkit._values.records import RewardGrant
from referralkit.policies._base import Counter, PolicyContext, PolicyResult, RewardPolicy, Trigger
from referralkit.policies._conditions import All, Any, Compare, Condition

__all__ = ["PRECEDENCE", "FirstMatch", "Stack", "When", "choose", "when"]


def _is_policy(field: str, value: object) -> RewardPolicy:
    name = getattr(value, "name", None)
    if not isinstance(name, str) or not name or not callable(getattr(value, "evaluate", None)):
        raise InvalidProgramError(field, value, "must implement RewardPolicy")
    return value  # type: ignore[return-value]


def _condition(value: object) -> Condition:
    if not isinstance(value, Compare | All | Any):
        raise InvalidProgramError(
            "when.condition", value, "must be a condition such as Attr('sale.amount') >= ..."
        )
    return value


def _policy(value: object) -> RewardPolicy:
    return _is_policy("when.policy", value)


@attrs.frozen
class When:
    """``policy`` applies only when ``condition`` holds; otherwise it grants nothing and the
    decision names the false clause (reason ``condition.false``).

    Build it with ``when(condition, policy)``. It takes the policy's name and
    trigger.
    """

    condition: Condition = attrs.field(converter=_condition)
    policy: RewardPolicy = attrs.field(converter=_policy)

    @property
    def name(self) -> str:
        """The wrapped policy's name."""
        return self.policy.name

    @property
    def trigger(self) -> Trigger:
        """The wrapped policy's trigger."""
        return self.policy.trigger

    def needs(self) -> frozenset[Counter]:
        """The condition's counters and the policy's."""
        return self.condition.needs() | self.policy.needs()

    def check(self, currency: str) -> None:
        """Check the condition's values and the policy."""
        try:
            self.condition.check(currency)
        except InvalidProgramError as exc:
            raise InvalidProgramError(f"{self.name}.condition", exc.value, exc.problem) from None
        self.policy.check(currency)

    def evaluate(self, ctx: PolicyContext) -> PolicyResult:
        """The policy's result if the condition holds, else one skipped decision."""
        failed = self.condition.failure(ctx)
        if failed is not None:
            d = Decision.of(self.name, Verdict.SKIPPED, "condition.false", clause=failed)
            return PolicyResult(decisions=(d,))
        return self.policy.evaluate(ctx)


def when(condition: Condition, policy: RewardPolicy) -> When:
    """``policy``, applied only when ``condition`` holds.

    ```python
    when(Attr("sale.amount") >= Money(50, "USD"), SingleSided(referrer=Cash(Money(10, "USD"))))
    ```
    """
    return When(condition, policy)


def _policies(kind: str) -> Callable[[object], tuple[RewardPolicy, ...]]:
    def convert(value: object) -> tuple[RewardPolicy, ...]:
        if not isinstance(value, Iterable) or isinstance(value, str | bytes):
            raise InvalidProgramError(f"{kind}.policies", value, "must be a sequence of policies")
        items = tuple(value)
        if not items:
            raise InvalidProgramError(f"{kind}.policies", items, "needs at least one policy")
        names: set[str] = set()
        for i, item in enumerate(items):
            policy = _is_policy(f"{kind}.policies[{i}]", item)
            if policy.trigger is not items[0].trigger:
                raise InvalidProgramError(
                    f"{kind}.policies[{i}].trigger",
                    policy.trigger,
                    f"must be the trigger of policies[0] ({items[0].trigger})",
                )
            if policy.name in names:
                raise InvalidProgramError(
                    f"{kind}.policies[{i}].name", policy.name, "is used by an earlier policy"
                )
            names.add(policy.name)
        return items

    return convert


def _stack_policies(value: object) -> tuple[RewardPolicy, ...]:
    return _policies("stack")(value)


def _first_match_policies(value: object) -> tuple[RewardPolicy, ...]:
    return _policies("first_match")(value)


class _Group:
    policies: tuple[RewardPolicy, ...]
    name: str

    @property
    def trigger(self) -> Trigger:
        """The trigger all the policies share."""
        return self.policies[0].trigger

    def needs(self) -> frozenset[Counter]:
        """Every policy's counters."""
        return frozenset().union(*(p.needs() for p in self.policies))

    def check(self, currency: str) -> None:
        """Check every policy."""
        for p in self.policies:
            p.check(currency)


@attrs.frozen
class Stack(_Group):
    """Every policy applies; their grants and decisions are concatenated in order.

    The policies must share one trigger and have distinct names.
    """

    policies: tuple[RewardPolicy, ...] = attrs.field(converter=_stack_policies)
    name: str = "stack"

    def evaluate(self, ctx: PolicyContext) -> PolicyResult:
        """All the policies' grants."""
        grants: list[RewardGrant] = []
        decisions: list[Decision] = []
        for p in self.policies:
            result = p.evaluate(ctx)
            grants.extend(result.grants)
            decisions.extend(result.decisions)
        return PolicyResult(tuple(grants), tuple(decisions))


@attrs.frozen
class FirstMatch(_Group):
    """The first policy that grants anything wins; the later ones are not asked.

    Order the policies by precedence (for conditional rewards: most specific first). The
    decisions of the policies tried before it are kept, so the trace says why they did
    not match. The policies must share one trigger and have distinct names.
    """

    policies: tuple[RewardPolicy, ...] = attrs.field(converter=_first_match_policies)
    name: str = "first_match"

    def evaluate(self, ctx: PolicyContext) -> PolicyResult:
        """The first granting policy's result, after the decisions of those tried before."""
        decisions: list[Decision] = []
        for p in self.policies:
            result = p.evaluate(ctx)
            decisions.extend(result.decisions)
            if result.grants:
                return PolicyResult(result.grants, tuple(decisions))
        decisions.append(Decision.of(self.name, Verdict.SKIPPED, "first_match.none"))
        return PolicyResult(decisions=tuple(decisions))


PRECEDENCE = ("all", "first_match", "highest")
"""How a program settles several conditional (``when``) policies that grant on one event:
``all`` pays every one, ``first_match`` only the first in program order, ``highest`` only
the one granting the most money (the first on a tie)."""


def choose(
    precedence: str, results: Sequence[tuple[str, PolicyResult]]
) -> tuple[set[int], list[Decision]]:
    """Which of the conditional policies' results to keep, by ``precedence``.

    Args:
        precedence: One of ``PRECEDENCE``.
        results: (policy name, result) of the program's top-level ``when`` policies, in
            program order.

    Returns:
        The indices kept, and a ``precedence.not_chosen`` decision for each result that
        granted something and was dropped.
    """
    granting = [i for i, (_, r) in enumerate(results) if r.grants]
    if precedence == "all" or len(granting) < 2:
        return set(range(len(results))), []
    if precedence == "first_match":
        chosen = granting[0]
    else:

        def money(i: int) -> Decimal:
            return sum(
                (g.value.quantity for g in results[i][1].grants if g.value.unit.is_money),
                Decimal(0),
            )

        chosen = max(granting, key=lambda i: (money(i), -i))
    dropped = [
        Decision.of(
            results[i][0],
            Verdict.SKIPPED,
            "precedence.not_chosen",
            rule=precedence,
            chosen=results[chosen][0],
        )
        for i in granting
        if i != chosen
    ]
    kept = {i for i in range(len(results)) if i == chosen or i not in granting}
    return kept, dropped
