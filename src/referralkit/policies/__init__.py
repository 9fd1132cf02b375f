"""Reward policies: pure rules that turn a referral event into grants.

Every policy implements the [`RewardPolicy`][referralkit.RewardPolicy] protocol; the engine
knows nothing else about them.
"""

from referralkit.policies._base import Counter, PolicyContext, PolicyResult, RewardPolicy, Trigger
from referralkit.policies._sided import DoubleSided, SingleSided

__all__ = [
    "Counter",
    "DoubleSided",
    "PolicyContext",
    "PolicyResult",
    "RewardPolicy",
    "SingleSided",
    "Trigger",
]
