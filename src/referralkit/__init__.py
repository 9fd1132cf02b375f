"""referralkit: referral programs inside your application.

Import one thing: ``import referralkit as rk``. Names that need an optional dependency are
loaded lazily and say which extra to install when it is missing.
"""

from __future__ import annotations

import typing as _typing

from referralkit._adapters.memory import InMemoryStore, OutboxStatus
from referralkit._adapters.notifiers import (
    ID_HEADER,
    SIGNATURE_HEADER,
    CallbackNotifier,
    LoggingNotifier,
    RecordingNotifier,
    WebhookNotifier,
    verify_webhook,
    webhook_body,
)
from referralkit._adapters.sqlite import SQLiteStore
from referralkit._engine import DispatchResult, Engine
from referralkit._errors import (
    ConcurrencyError,
    CorruptRecordError,
    CurrencyMismatchError,
    EventConflictError,
    InvalidEventError,
    InvalidInputError,
    InvalidProgramError,
    InvalidSignatureError,
    MissingExtraError,
    NaiveDatetimeError,
    NotifierError,
    ReferralKitError,
    RetryLaterError,
    SchemaVersionError,
    StoreError,
    StoreUnavailableError,
    UnknownOrderError,
)
from referralkit._ledger import Balance, BalanceLine, RewardView
from referralkit._ports import (
    Counters,
    EventLog,
    Ledger,
    Notifier,
    Orders,
    Outbox,
    Participants,
    Programs,
    Referrals,
    Store,
    UnitOfWork,
)
from referralkit._program import Program
from referralkit._values.clock import Clock, ManualClock, SystemClock
from referralkit._values.decisions import Decision, Verdict
from referralkit._values.events import (
    CHANNELS,
    Chargeback,
    Click,
    Event,
    LineItem,
    Purchase,
    Refund,
    Signup,
)
from referralkit._values.money import Money
from referralkit._values.records import (
    ChargebackRecord,
    CodeRecord,
    Entry,
    EntryKind,
    EventRecord,
    Notification,
    OrderRecord,
    Outcome,
    ParticipantRecord,
    ProgramRecord,
    Referral,
    RefundRecord,
    Reversal,
    Reward,
    RewardGrant,
    RewardState,
    Role,
)
from referralkit._values.rewards import (
    Badge,
    Cash,
    Credit,
    Discount,
    FreePeriod,
    Points,
    RewardValue,
    Unit,
)
from referralkit.policies import (
    Counter,
    DoubleSided,
    PolicyContext,
    PolicyResult,
    RewardPolicy,
    SingleSided,
    Trigger,
)

if _typing.TYPE_CHECKING:
    from referralkit._adapters.sqlalchemy import SQLAlchemyStore

__version__ = "0.1.0.dev0"

__all__ = [
    "CHANNELS",
    "ID_HEADER",
    "SIGNATURE_HEADER",
    "Badge",
    "Balance",
    "BalanceLine",
    "CallbackNotifier",
    "Cash",
    "Chargeback",
    "ChargebackRecord",
    "Click",
    "Clock",
    "CodeRecord",
    "ConcurrencyError",
    "CorruptRecordError",
    "Counter",
    "Counters",
    "Credit",
    "CurrencyMismatchError",
    "Decision",
    "Discount",
    "DispatchResult",
    "DoubleSided",
    "Engine",
    "Entry",
    "EntryKind",
    "Event",
    "EventConflictError",
    "EventLog",
    "EventRecord",
    "FreePeriod",
    "InMemoryStore",
    "InvalidEventError",
    "InvalidInputError",
    "InvalidProgramError",
    "InvalidSignatureError",
    "Ledger",
    "LineItem",
    "LoggingNotifier",
    "ManualClock",
    "MissingExtraError",
    "Money",
    "NaiveDatetimeError",
    "Notification",
    "Notifier",
    "NotifierError",
    "OrderRecord",
    "Orders",
    "Outbox",
    "OutboxStatus",
    "Outcome",
    "ParticipantRecord",
    "Participants",
    "Points",
    "PolicyContext",
    "PolicyResult",
    "Program",
    "ProgramRecord",
    "Programs",
    "Purchase",
    "RecordingNotifier",
    "Referral",
    "ReferralKitError",
    "Referrals",
    "Refund",
    "RefundRecord",
    "RetryLaterError",
    "Reversal",
    "Reward",
    "RewardGrant",
    "RewardPolicy",
    "RewardState",
    "RewardValue",
    "RewardView",
    "Role",
    "SQLAlchemyStore",
    "SQLiteStore",
    "SchemaVersionError",
    "Signup",
    "SingleSided",
    "Store",
    "StoreError",
    "StoreUnavailableError",
    "SystemClock",
    "Trigger",
    "Unit",
    "UnitOfWork",
    "UnknownOrderError",
    "Verdict",
    "WebhookNotifier",
    "__version__",
    "verify_webhook",
    "webhook_body",
]


def __getattr__(name: str) -> object:
    """Load the names that need an optional dependency on first use."""
    if name == "SQLAlchemyStore":  # needs the 'sqlalchemy' extra
        from referralkit._adapters.sqlalchemy import SQLAlchemyStore

        globals()[name] = SQLAlchemyStore
        return SQLAlchemyStore
    raise AttributeError(f"module 'referralkit' has no attribute {name!r}")
