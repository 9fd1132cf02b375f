"""Every query the engine runs on SQLite is indexed: no full scan of a referralkit table.

A workload that goes through every engine path (attribution with clicks and visitors,
purchases, refunds, chargebacks, holds, settlement, payouts, points, notifications,
retention, erasure, re-attribution, batches) runs on a SQLite file with a trace callback;
then each distinct statement that reads rows is explained with ``EXPLAIN QUERY PLAN``. A
``SCAN`` of an ``rk_`` table, or a search narrowed by the program alone (one program's
whole part of a table), fails: the stores issue asks that "queries the engine and metrics
need run as indexed SQL". The statements that read everything on purpose (``dump``) are
not run here.
"""

from __future__ import annotations

import re
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dateutil.relativedelta import relativedelta

import referralkit as rk
from referralkit.attribution import CircularCheck, VelocityCheck

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
READS = re.compile(r"^\s*(SELECT|UPDATE|DELETE)\b", re.IGNORECASE)
# A full scan, or a search that narrows by program only (a program's whole part of a table).
# The outbox's partial indexes hold only the rows a dispatcher looks for: scanning one of
# them is what they are for.
FULL = re.compile(r"\bSCAN (rk_\w+)\b(?! USING INDEX rk_outbox_(fresh|retry|dead)\b)")
PROGRAM_ONLY = re.compile(r"\bSEARCH (rk_\w+) USING (COVERING )?INDEX \w+ \(program_id=\?\)")


def usd(amount: int | str) -> rk.Money:
    return rk.Money(amount, "USD")


class Recorder:
    def __init__(self) -> None:
        self.delivered: list[str] = []

    def send(self, notification: rk.Notification) -> None:
        self.delivered.append(notification.notification_id)


class Bank:
    def fulfil(self, payout: rk.Payout) -> None:
        return None


def workload(store: rk.SQLiteStore) -> None:
    program = rk.Program(
        id="shop",
        effective_at=START,
        currency="USD",
        policies=[
            rk.DoubleSided(referrer=rk.Cash(usd(20)), referee=rk.Credit(usd(10))),
            rk.PointsPolicy(per_referral=100, redeem_rate=usd("0.01")),
        ],
        hold=relativedelta(days=7),
        caps=rk.Caps(per_referrer_month=usd(200)),
        budget=usd(10_000),
    )
    clock = rk.ManualClock(START)
    engine = rk.Engine(
        program,
        store,
        clock=clock,
        notifier=Recorder(),
        fulfiller=Bank(),
        fraud_checks=[
            VelocityCheck(per_hour=50),
            VelocityCheck(per_day=500, sliding=True),
            CircularCheck(depth=3),
        ],
    )
    code = engine.issue_code("alice")
    other = engine.issue_code("zoe", max_uses=10)
    at = START
    events: list[rk.Event] = []
    for n in range(12):
        at += timedelta(minutes=5)
        who = f"friend{n}"
        events.append(
            rk.Click(event_id=f"c{n}", at=at, code=other, visitor_id=f"v{n}", channel="email")
        )
        events.append(
            rk.Signup(
                event_id=f"s{n}",
                participant_id=who,
                at=at + timedelta(seconds=1),
                code=code if n % 3 else None,
                visitor_id=f"v{n}",
                email=f"{who}@mail.example",
            )
        )
        events.append(
            rk.Purchase(
                event_id=f"p{n}",
                participant_id=who,
                order_id=f"o{n}",
                amount=usd(50 + n),
                at=at + timedelta(seconds=2),
            )
        )
    events.append(rk.Signup(event_id="s-lone", participant_id="lone", at=at))
    events.append(
        rk.Purchase(
            event_id="p-lone", participant_id="lone", order_id="o-lone", amount=usd(90), at=at
        )
    )
    events.append(rk.Refund(event_id="r1", refund_id="r1", order_id="o1", amount=usd(51), at=at))
    events.append(rk.Chargeback(event_id="cb2", chargeback_id="cb2", order_id="o2", at=at))
    engine.handle_many(events[:20], batch_size=8)
    for event in events[20:]:
        engine.handle(event)
    engine.handle(events[0])  # a duplicate
    referral = engine.referral_of("friend4")
    assert referral is not None
    engine.hold_referral(referral.referral_id, reason="check", actor="ops")
    engine.release_referral(referral.referral_id, actor="ops")
    clock.advance(timedelta(days=10))
    engine.settle()
    engine.payable("alice")
    engine.payout()
    engine.payouts_of("alice")
    engine.balance("alice")
    engine.rewards_for("alice")
    engine.points("alice")
    engine.redeem("alice", 100)
    engine.dispatch()
    engine.dead_letters()
    engine.explain("friend5")
    engine.outcome_of("p5")
    engine.event_log()
    engine.status_of("alice")
    engine.reattribute("lone", "alice", actor="ops", reason="support ticket")
    engine.reattribute("friend4", "zoe", actor="ops", reason="moved", operation_id="op-1")
    engine.reattribute("friend4", "zoe", actor="ops", reason="moved", operation_id="op-1")
    engine.purge_touches(timedelta(days=30))
    engine.erase_participant("friend7")


def test_no_query_the_engine_runs_scans_a_whole_table(tmp_path: Path) -> None:
    path = tmp_path / "rk.db"
    store = rk.SQLiteStore(path)
    statements: list[str] = []
    store._conn.set_trace_callback(statements.append)
    workload(store)
    store.close()

    reads = sorted({s for s in statements if READS.match(s)})
    assert len(reads) > 20, reads  # the workload really went through the store
    conn = sqlite3.connect(path)
    scans = {}
    for sql in reads:
        plan = " | ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}"))
        if FULL.search(plan) or PROGRAM_ONLY.search(plan):
            scans[sql] = plan
    conn.close()
    assert not scans, "\n\n".join(f"{sql}\n  -> {plan}" for sql, plan in scans.items())
