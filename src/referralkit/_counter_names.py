"""The engine's own counters: bookkeeping the stores keep like any counter, which policies
never see (they read the public ``Counter`` names). One place for the names, as live
handling, re-attribution and the invariant checks all read them."""

from __future__ import annotations

from typing import Final

from referralkit.policies._base import Counter

__all__ = [
    "CODE_DEACTIVATED",
    "CODE_USES",
    "CONVERSIONS",
    "EXISTING_CUSTOMER",
    "MILESTONE",
    "ORDER_BACKFILLED",
    "ORDER_CLOSED",
    "ORDER_REVERSED",
    "ORDER_SLOT",
    "POINTS_EARNED",
    "STATUS_LEVEL",
    "STATUS_MONTH",
]

#: Subject: a referral. Its first purchases that converted it (0 or 1).
CONVERSIONS: Final = "referral.conversions"
#: Subject: an order. Its amount already reversed by refunds, in program currency.
ORDER_REVERSED: Final = "order.reversed"
#: Subject: an order. 1 once a chargeback or a full refund closed it.
ORDER_CLOSED: Final = "order.closed"
#: Subject: an order. 1: counted for a re-attributed referral; 2: and it converted.
ORDER_BACKFILLED: Final = "order.backfilled"
#: Subject: an order. 1: it used one of its referee's purchase slots.
ORDER_SLOT: Final = "order.referee_slot"
#: Subject: an id derived from participant, policy and milestone. 1 once granted.
MILESTONE: Final = "milestone.granted"
#: Subject: participant/points unit. Points earned and not yet spent or expired.
POINTS_EARNED: Final = "points.earned"
#: Subject: a participant. The status level they hold.
STATUS_LEVEL: Final = "status.level"
#: Subject: participant/basis/YYYY-MM. A month's count for rolling status levels.
STATUS_MONTH: Final = "status.month"
#: Subject: a code. Referrals made with it.
CODE_USES: Final = "code.uses"
#: Subject: a code. 1 once deactivated.
CODE_DEACTIVATED: Final = "code.deactivated"
#: Subject: a participant. 1: a customer before any referral (``referee.new_customer``).
EXISTING_CUSTOMER: Final = Counter.REFEREE_EXISTING_CUSTOMER.value
