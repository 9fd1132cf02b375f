"""The one exception tree of referralkit.

Every error referralkit raises derives from [`ReferralKitError`][referralkit.ReferralKitError];
input errors also derive from the matching builtin, so ``except ValueError`` keeps working:

```text
ReferralKitError
├── InvalidInputError (ValueError)      bad input named by field and value
│   ├── InvalidEventError               an event that cannot be handled as given
│   ├── CurrencyMismatchError           two currencies where one is required
│   │   └── ExchangeRateError           no usable rate to convert a purchase
│   ├── NaiveDatetimeError              a datetime without a time zone
│   ├── InvalidProgramError             a program or policy that cannot run
│   ├── InvalidTokenError               a referral-link token that does not verify
│   ├── InvalidSignatureError           a webhook delivery that does not verify
│   ├── UnknownRewardError (LookupError) no reward with that id
│   ├── UnknownReferralError (LookupError) no referral with that id
│   ├── IllegalTransitionError          a ledger change the reward's state forbids
│   └── InsufficientPointsError         redeeming more points than are available
├── EventConflictError                  an id reused with different fields
├── RetryLaterError                     needs an event not yet seen; retry later
│   └── UnknownOrderError               a refund / chargeback of an unknown order
├── StoreError                          the store failed
│   ├── ConcurrencyError                a conflicting concurrent write; retried
│   ├── StoreUnavailableError
│   ├── SchemaVersionError
│   └── CorruptRecordError
├── NotifierError                       a notifier failed to deliver
└── MissingExtraError (ImportError)     an optional dependency is not installed
```

A referral that cannot be made (an unknown code, a self-referral, an already referred
referee) is not an error: it is a decision in the [`Outcome`][referralkit.Outcome].
"""

from __future__ import annotations

__all__ = [
    "ConcurrencyError",
    "CorruptRecordError",
    "CurrencyMismatchError",
    "EventConflictError",
    "ExchangeRateError",
    "IllegalTransitionError",
    "InsufficientPointsError",
    "InvalidEventError",
    "InvalidInputError",
    "InvalidProgramError",
    "InvalidSignatureError",
    "InvalidTokenError",
    "MissingExtraError",
    "NaiveDatetimeError",
    "NotifierError",
    "ReferralKitError",
    "RetryLaterError",
    "SchemaVersionError",
    "StoreError",
    "StoreUnavailableError",
    "UnknownOrderError",
    "UnknownReferralError",
    "UnknownRewardError",
]


class ReferralKitError(Exception):
    """Root of every error referralkit raises."""


class InvalidInputError(ReferralKitError, ValueError):
    """A value given to referralkit is not acceptable.

    Attributes:
        field: Dotted name of the offending field, such as ``"purchase.amount"``.
        value: The offending value as given.
        problem: What is wrong with it.
    """

    def __init__(self, field: str, value: object, problem: str) -> None:
        self.field = field
        self.value = value
        self.problem = problem
        super().__init__(f"{field}={value!r}: {problem}")

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.field, self.value, self.problem))


class InvalidEventError(InvalidInputError):
    """An event whose fields cannot be handled as given (a refund above the order, ...)."""


class CurrencyMismatchError(InvalidInputError):
    """Two amounts, or an amount and a program, in different currencies."""


class ExchangeRateError(CurrencyMismatchError):
    """A purchase in another currency that cannot be converted: the exchange-rate port has
    no rate for the pair, or gave one that is not a positive number. Nothing was written."""


class NaiveDatetimeError(InvalidInputError):
    """A datetime without a time zone where an aware one is required."""


class InvalidProgramError(InvalidInputError):
    """A program, policy or program version that cannot run."""


class InsufficientPointsError(InvalidInputError):
    """Redeeming more points than the account has available; nothing was written.

    Attributes:
        requested: The points asked for.
        available: The approved, unexpired points of the account.
        account: The points account.
    """

    def __init__(self, requested: int, available: int, account: str) -> None:
        self.requested, self.available, self.account = requested, available, account
        super().__init__(
            "points",
            requested,
            f"exceeds the {available} available points in account {account!r}",
        )

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.requested, self.available, self.account))


class InvalidSignatureError(InvalidInputError):
    """A signed webhook delivery that does not verify: altered, replayed or malformed."""


class InvalidTokenError(InvalidInputError):
    """A referral-link token that is malformed, tampered with or signed with an unknown key."""


class UnknownRewardError(InvalidInputError, LookupError):
    """No reward of the engine's program has this id. Nothing was written."""

    def __init__(self, reward_id: object, field: str = "reward_id") -> None:
        super().__init__(field, reward_id, "no such reward in this program")

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.value, self.field))


class UnknownReferralError(InvalidInputError, LookupError):
    """No referral of the engine's program has this id. Nothing was written."""

    def __init__(self, referral_id: object, field: str = "referral_id") -> None:
        super().__init__(field, referral_id, "no such referral in this program")

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.value, self.field))


class IllegalTransitionError(InvalidInputError):
    """A ledger change that the reward's current state does not allow.

    Releasing a reward that is not held, approving or holding a rejected one, rejecting a
    paid one (reverse it instead), and so on. Rejected and fraud are final. Nothing was
    written.

    Attributes:
        field: ``"reward_id"``.
        value: The reward id.
        state: The reward's current state (a string).
        action: What was asked (``"release"``, ``"approve"``, ...).
    """

    def __init__(self, reward_id: str, state: str, action: str) -> None:
        self.state = state
        self.action = action
        super().__init__("reward_id", reward_id, f"cannot {action} a reward that is {state}")

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.value, self.state, self.action))


class EventConflictError(ReferralKitError):
    """An id was reused with different fields.

    Raised for an event id seen before with another payload, and for an order, refund or
    chargeback id recorded before with other fields. The same fields under a new event id
    are an accepted no-op, not a conflict.

    Attributes:
        field: Which id was reused (``"event_id"``, ``"order_id"``, ...).
        value: The reused id.
    """

    def __init__(self, field: str, value: object, problem: str) -> None:
        self.field = field
        self.value = value
        self.problem = problem
        super().__init__(f"{field}={value!r}: {problem}")

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.field, self.value, self.problem))


class RetryLaterError(ReferralKitError):
    """The event depends on one not yet seen; deliver it again later. Nothing was written."""


class UnknownOrderError(RetryLaterError):
    """A refund or chargeback names an order the program has not recorded yet.

    Attributes:
        field: Which field named it (``"refund.order_id"``).
        value: The unknown order id (also as ``order_id``).
    """

    def __init__(self, order_id: str, field: str = "order_id") -> None:
        self.order_id = order_id
        self.value = order_id
        self.field = field
        super().__init__(f"{field}={order_id!r}: no such order recorded yet; retry later")

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.order_id, self.field))


class StoreError(ReferralKitError):
    """The store could not do what was asked."""


class ConcurrencyError(StoreError):
    """A concurrent unit of work changed the same records; the engine retries."""


class StoreUnavailableError(StoreError):
    """The store cannot be reached."""


class SchemaVersionError(StoreError):
    """The store's schema was written by another version of referralkit."""


class CorruptRecordError(StoreError):
    """A stored record cannot be read back."""


class NotifierError(ReferralKitError):
    """A notifier failed to deliver a notification."""


class MissingExtraError(ReferralKitError, ImportError):
    """An optional dependency is missing.

    Attributes:
        feature: What needs it (``"SQLAlchemyStore"``).
        extra: The extra that installs it (``"sqlalchemy"``).
    """

    def __init__(self, feature: str, extra: str) -> None:
        self.feature = feature
        self.extra = extra
        super().__init__(f"{feature} needs the {extra!r} extra: pip install 'referralkit[{extra}]'")

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.feature, self.extra))
