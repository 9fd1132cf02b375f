"""Erasure of a participant's personal fields in the event log (``Engine.erase_participant``).

The log keeps every event with the digest of its payload as delivered, so a retried event
is still recognised after erasure: its id and digest are looked up, never its fields.
"""

from __future__ import annotations

import attrs

from referralkit._ports import UnitOfWork, events_about
from referralkit._values.events import Chargeback, Click, Event, Purchase, Refund, Signup
from referralkit._values.ids import derive_id

__all__ = ["email_pseudonym", "redact_events"]


def email_pseudonym(program_id: str, participant_id: str) -> str:
    """The stable address that replaces an erased participant's email (a valid address
    under the reserved ``.invalid`` domain, unique to the participant)."""
    return f"{derive_id('erased', program_id, participant_id)}@erased.invalid"


def _visitor(program_id: str, visitor_id: str) -> str:
    if visitor_id.startswith("erased_"):
        return visitor_id  # erased before
    return derive_id("erased", program_id, "visitor", visitor_id)


def redact_events(uow: UnitOfWork, program_id: str, participant_id: str) -> int:
    """Rewrite the participant's events in the log without their personal fields.

    Their sign-ups lose the email (replaced by the pseudonym), the keyed hashes of device,
    payment fingerprint, payout account and IP, and the metadata; their visitor id is
    replaced by a pseudonym, in the clicks of that visitor too, so a replay still joins the
    clicks to the sign-up. Their purchases, and the refunds and chargebacks of those
    orders, lose their metadata. Ids, times, codes, amounts and items stay, so the ledger,
    its totals and every business key still add up. Each event keeps the digest of the
    payload as delivered: a retry of the original event is still a duplicate.

    The events are found by their keys (``events_about``: the participant's, then their
    visitors' and orders'), an indexed query on the shipped stores.

    Returns:
        How many events were rewritten.
    """
    mine: list[Signup | Purchase] = []
    visitors: set[str] = set()
    orders: set[str] = set()
    for _, record in events_about(uow, program_id, [participant_id]):
        ev = record.event
        if not isinstance(ev, Signup | Purchase) or ev.participant_id != participant_id:
            continue  # another kind of event whose key is the same text
        mine.append(ev)
        if isinstance(ev, Signup) and ev.visitor_id is not None:
            visitors.add(ev.visitor_id)
        elif isinstance(ev, Purchase):
            orders.add(ev.order_id)
    others: list[Click | Refund | Chargeback] = []
    for _, record in events_about(uow, program_id, sorted(visitors | orders)):
        other = record.event
        if (isinstance(other, Click) and other.visitor_id is not None) or isinstance(
            other, Refund | Chargeback
        ):
            others.append(other)
    changed: list[Event] = []
    for ev in mine:
        if isinstance(ev, Signup):
            email = None if ev.email is None else email_pseudonym(program_id, participant_id)
            visitor = None if ev.visitor_id is None else _visitor(program_id, ev.visitor_id)
            erased = attrs.evolve(
                ev,
                email=email,
                visitor_id=visitor,
                metadata={},
                device=None,
                payment_fingerprint=None,
                payout_account=None,
                ip=None,
            )
            changed.append(erased)
        else:
            changed.append(attrs.evolve(ev, metadata={}))
    for other in others:
        if isinstance(other, Click):
            if other.visitor_id in visitors:
                visitor = _visitor(program_id, other.visitor_id)
                changed.append(attrs.evolve(other, visitor_id=visitor, metadata={}))
        elif other.order_id in orders:
            changed.append(attrs.evolve(other, metadata={}))
    done = 0
    for new in changed:
        logged = uow.events.get(program_id, new.event_id)
        if logged is None or (logged.event == new and not logged.event.metadata):
            continue  # nothing personal left (erased before)
        uow.events.redact(program_id, new.event_id, new)
        done += 1
    return done
