"""What the engine tells fraud checks about a referral about to be made (engine layer).

Shared by [`Engine`][referralkit.Engine]'s attribution and its operator re-attribution:
the velocity counters (per clock hour and per day, UTC) and the chain of referrers above
the referrer that ``CircularCheck(depth=...)`` asks for.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from referralkit._ports import CounterKey, UnitOfWork
from referralkit.attribution._fraud import (
    FraudCheck,
    FraudContext,
    IdentityFacts,
    sliding_count,
)

__all__ = ["chain_depth", "fraud_context", "velocity_keys"]

_REFERRALS_HOUR = "referrer.referrals.hour"
_REFERRALS_DAY = "referrer.referrals.day"
_HOUR = timedelta(hours=1)
_DAY = timedelta(days=1)


def velocity_keys(program_id: str, referrer: str, at: datetime) -> tuple[CounterKey, CounterKey]:
    """The referrer's referral counters for the clock hour and the day (UTC) of ``at``."""
    utc = at.astimezone(UTC)
    return (
        (program_id, f"{_REFERRALS_HOUR}:{utc:%Y-%m-%dT%H}", referrer),
        (program_id, f"{_REFERRALS_DAY}:{utc:%Y-%m-%d}", referrer),
    )


def chain_depth(checks: Iterable[FraudCheck]) -> int:
    """How many referrers above the referrer the checks read (``chain_depth``), at least 1."""
    return max((int(getattr(check, "chain_depth", 1)) for check in checks), default=1)


def fraud_context(
    uow: UnitOfWork,
    program_id: str,
    *,
    referrer_id: str,
    referee_id: str,
    at: datetime,
    referrer: IdentityFacts,
    referee: IdentityFacts,
    code: str | None,
    channel: str | None,
    depth: int = 1,
) -> FraudContext:
    """The context for a referral of ``referee_id`` by ``referrer_id`` made at ``at``,
    counting it in the velocity figures; ``depth`` referrers above the referrer are looked
    up (one indexed read each, stopping at the top or at a loop)."""
    hour, day = velocity_keys(program_id, referrer_id, at)
    last_hour = velocity_keys(program_id, referrer_id, at - _HOUR)[0]
    yesterday = velocity_keys(program_id, referrer_id, at - _DAY)[1]
    counts = uow.counters.get([hour, day, last_hour, yesterday])
    utc = at.astimezone(UTC)
    into_hour = utc - utc.replace(minute=0, second=0, microsecond=0)
    into_day = utc - utc.replace(hour=0, minute=0, second=0, microsecond=0)
    this_hour, today = int(counts[hour]) + 1, int(counts[day]) + 1
    chain: list[str] = []
    seen, above = {referrer_id}, referrer_id
    while len(chain) < depth:
        found = uow.referrals.by_referee(program_id, above)
        if found is None:
            break
        chain.append(found.referrer_id)
        if found.referrer_id in seen:
            break  # a loop already in the data
        seen.add(found.referrer_id)
        above = found.referrer_id
    return FraudContext(
        program_id=program_id,
        referrer_id=referrer_id,
        referee_id=referee_id,
        at=at,
        referrer=referrer,
        referee=referee,
        code=code,
        channel=channel,
        referrer_of_referrer=chain[0] if chain else None,
        referrals_this_hour=this_hour,
        referrals_today=today,
        referrals_past_hour=sliding_count(this_hour, int(counts[last_hour]), into_hour, _HOUR),
        referrals_past_day=sliding_count(today, int(counts[yesterday]), into_day, _DAY),
        referrer_chain=tuple(chain),
    )
