"""Reward policies: pure rules that turn a referral event into grants.

Every policy implements the [`RewardPolicy`][referralkit.RewardPolicy] protocol; the engine
knows nothing else about them. Conditions (``Attr``, ``Compare``, ``All``, ``Any``, exported
at the top level as ``AllOf`` and ``AnyOf``) and the combinators (``when``, ``Stack``,
``FirstMatch``) compose them; ``register_policy`` makes a policy class loadable from a
declarative program.
"""

from referralkit.policies._base import Counter, PolicyContext, PolicyResult, RewardPolicy, Trigger
from referralkit.policies._combinators import FirstMatch, Stack, When, when
from referralkit.policies._conditions import (
    ATTRIBUTES as CONDITION_ATTRIBUTES,
)
from referralkit.policies._conditions import (
    OPERATORS as CONDITION_OPERATORS,
)
from referralkit.policies._conditions import (
    All,
    AllOf,
    Any,
    AnyOf,
    Attr,
    Compare,
    Condition,
)
from referralkit.policies._config import PolicyType, policy_types, register_policy
from referralkit.policies._escalating import Escalating
from referralkit.policies._hybrid import Hybrid
from referralkit.policies._limits import Caps
from referralkit.policies._milestones import (
    Level,
    Milestone,
    Milestones,
    Progress,
    RollingStatusLevels,
    StatusBasis,
    StatusLevels,
)
from referralkit.policies._per_item import PerItem
from referralkit.policies._points import PointsAccount, PointsPolicy, Redemption
from referralkit.policies._revenue_share import RevenueShare
from referralkit.policies._sided import DoubleSided, SingleSided
from referralkit.policies._tiered import Tier, Tiered

__all__ = [
    "CONDITION_ATTRIBUTES",
    "CONDITION_OPERATORS",
    "All",
    "AllOf",
    "Any",
    "AnyOf",
    "Attr",
    "Caps",
    "Compare",
    "Condition",
    "Counter",
    "DoubleSided",
    "Escalating",
    "FirstMatch",
    "Hybrid",
    "Level",
    "Milestone",
    "Milestones",
    "PerItem",
    "PointsAccount",
    "PointsPolicy",
    "PolicyContext",
    "PolicyResult",
    "PolicyType",
    "Progress",
    "Redemption",
    "RevenueShare",
    "RewardPolicy",
    "RollingStatusLevels",
    "SingleSided",
    "Stack",
    "StatusBasis",
    "StatusLevels",
    "Tier",
    "Tiered",
    "Trigger",
    "When",
    "policy_types",
    "register_policy",
    "when",
]
