"""The reward lifecycle under any interleaving: balances equal the sum of entries in every
reachable state, reversals never exceed grants, and no reward is paid twice or lost, with
a fulfiller that fails at random and events delivered again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from dateutil.relativedelta import relativedelta
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

import referralkit as rk
from referralkit.testing import check_ledger, check_outbox, check_paid_once, check_reversals

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
MONEY = frozenset({"cash", "credit"})


class FlakyFulfiller:
    """A payment provider that fails when told to and deduplicates by payout id, as the
    Fulfiller protocol asks of hosts."""

    def __init__(self) -> None:
        self.failures: list[bool] = []
        self.received: dict[str, rk.Payout] = {}  # payout id -> what was paid, once
        self.calls = 0

    def fulfil(self, payout: rk.Payout) -> None:
        self.calls += 1
        if self.failures and self.failures.pop(0):
            raise TimeoutError("the provider timed out")
        known = self.received.get(payout.payout_id)
        if known is not None:
            assert known.amount == payout.amount, "a payout id was reused for another amount"
            return
        self.received[payout.payout_id] = payout


class LedgerLifecycle(RuleBasedStateMachine):
    """Referrals, purchases, refunds, chargebacks, settle, holds and decisions, payouts
    with a failing fulfiller, write-offs and repeated events, in any order."""

    @initialize(
        negative=st.booleans(),
        vetoing=st.booleans(),
        review=st.booleans(),
        sqlite=st.booleans(),
    )
    def start(self, negative: bool, vetoing: bool, review: bool, sqlite: bool) -> None:
        self.clock = rk.ManualClock(T0)
        self.fulfiller = FlakyFulfiller()
        program = rk.Program(
            id="lifecycle",
            effective_at=T0 - timedelta(days=1),
            currency="USD",
            policies=[
                rk.DoubleSided(referrer=rk.Cash(rk.Money(20, "USD")), referee=rk.Points(50)),
                rk.SingleSided(referrer=rk.Credit(rk.Money("7.50", "USD")), name="bonus"),
            ],
            hold=relativedelta(days=10),
            policy_holds={"bonus": relativedelta(days=2)},
            review_after=relativedelta(days=3) if review else None,
            negative_balance=negative,
        )

        def veto(view: rk.RewardView) -> str | None:
            # refuse every third referee's rewards: deterministic, depends on the reward
            return "blocked" if vetoing and view.reward.referral_id.endswith(("0", "3")) else None

        codes = iter(f"CODE{n:04d}" for n in range(10_000))
        self.engine = rk.Engine(
            program,
            rk.SQLiteStore() if sqlite else rk.InMemoryStore(),
            clock=self.clock,
            fulfiller=self.fulfiller,
            veto=veto,
            code_factory=lambda: next(codes),
        )
        self.referrers = ["alice", "dora"]
        self.codes = {who: self.engine.issue_code(who) for who in self.referrers}
        self.events: list[rk.Event] = []
        self.orders: dict[str, tuple[str, Decimal]] = {}  # order id -> (event id, amount)
        self.refunded: dict[str, Decimal] = {}
        self.people: list[str] = list(self.referrers)
        self.n = 0

    # -- the host's side ------------------------------------------------------------------
    def _handle(self, event: rk.Event) -> None:
        self.events.append(event)
        self.engine.handle(event)

    @rule(
        referrer=st.sampled_from(["alice", "dora"]),
        amount=st.sampled_from(["30", "80.00", "99.99"]),
    )
    def refer_and_buy(self, referrer: str, amount: str) -> None:
        self.n += 1
        who, order = f"friend{self.n}", f"order{self.n}"
        at = self.clock.now()
        self._handle(
            rk.Signup(event_id=f"s{self.n}", participant_id=who, code=self.codes[referrer], at=at)
        )
        self._handle(
            rk.Purchase(
                event_id=f"p{self.n}",
                participant_id=who,
                order_id=order,
                amount=rk.Money(amount, "USD"),
                at=at,
            )
        )
        self.orders[order] = (f"p{self.n}", Decimal(amount))
        self.people.append(who)

    @precondition(lambda self: self.orders)
    @rule(data=st.data(), share=st.sampled_from([Decimal("0.1"), Decimal("0.5"), Decimal(1)]))
    def refund(self, data: st.DataObject, share: Decimal) -> None:
        order = data.draw(st.sampled_from(sorted(self.orders)), label="order")
        total = self.orders[order][1]
        left = total - self.refunded.get(order, Decimal(0))
        amount = min(left, (total * share).quantize(Decimal("0.01")))
        if amount <= 0:
            return
        self.refunded[order] = self.refunded.get(order, Decimal(0)) + amount
        self.n += 1
        self._handle(
            rk.Refund(
                event_id=f"r{self.n}",
                refund_id=f"r{self.n}",
                order_id=order,
                amount=rk.Money(amount, "USD"),
                at=self.clock.now(),
            )
        )

    @precondition(lambda self: self.orders)
    @rule(data=st.data())
    def chargeback(self, data: st.DataObject) -> None:
        order = data.draw(st.sampled_from(sorted(self.orders)), label="order")
        if self.refunded.get(order) == self.orders[order][1]:
            return  # refunded in full or charged back already
        self.refunded[order] = self.orders[order][1]
        self._handle(
            rk.Chargeback(
                event_id=f"cb-{order}",
                chargeback_id=f"cb-{order}",
                order_id=order,
                at=self.clock.now(),
            )
        )

    @precondition(lambda self: self.events)
    @rule(data=st.data())
    def deliver_again(self, data: st.DataObject) -> None:
        """A webhook retried: the same event again is a duplicate and writes nothing."""
        event = data.draw(st.sampled_from(self.events), label="event")
        before = self.engine.store.dump()
        assert self.engine.handle(event).duplicate
        assert self.engine.store.dump() == before

    @rule(days=st.sampled_from([1, 3, 11]))
    def time_passes(self, days: int) -> None:
        self.clock.advance(timedelta(days=days))

    @rule()
    def settle(self) -> None:
        self.engine.settle()

    @rule(
        failures=st.lists(st.booleans(), max_size=4), who=st.sampled_from([None, "alice", "dora"])
    )
    def payout(self, failures: list[bool], who: str | None) -> None:
        self._payout(failures, who)

    @rule(failures=st.lists(st.booleans(), max_size=2))
    def a_month_later_settle_and_pay(self, failures: list[bool]) -> None:
        self.clock.advance(timedelta(days=31))
        self.engine.settle()
        self._payout(failures, None)

    def _payout(self, failures: list[bool], who: str | None) -> None:
        self.fulfiller.failures = list(failures)
        result = self.engine.payout(who)
        event(f"payouts: paid={bool(result.paid)} failed={bool(result.failed)}")
        if any(p.netted.amount for p in result.paid):
            event("a payout netted a clawback")
        paid_ids = [rid for p in result.paid for rid in p.reward_ids]
        assert len(paid_ids) == len(set(paid_ids)), "one payout call paid a reward twice"

    # -- the operator's side ---------------------------------------------------------------
    def _some_reward(self, data: st.DataObject) -> str | None:
        ids = [r.reward_id for r in self.engine.store.dump()["rewards"]]
        return data.draw(st.sampled_from(ids), label="reward") if ids else None

    @rule(
        data=st.data(),
        op=st.sampled_from(["hold", "hold_until", "release", "approve", "reject", "fraud"]),
    )
    def decide(self, data: st.DataObject, op: str) -> None:
        rid = self._some_reward(data)
        if rid is None:
            return
        before = self.engine.store.dump()
        state = self.engine.reward(rid).state
        try:
            if op == "hold":
                self.engine.hold(rid, reason="review", actor="ops")
            elif op == "hold_until":
                until = self.clock.now() + timedelta(days=2)
                self.engine.hold(rid, reason="cooling-off", actor="ops", until=until)
            elif op == "release":
                self.engine.release(rid, actor="ops")
            elif op == "approve":
                self.engine.approve(rid, actor="ops")
            else:
                self.engine.reject(rid, actor="ops", fraud=op == "fraud")
        except rk.IllegalTransitionError as exc:
            refused: rk.IllegalTransitionError | None = exc
        else:
            refused = None
        if refused is not None:
            assert (refused.value, refused.state) == (rid, state.value)
            assert self.engine.store.dump() == before, "a refused transition wrote something"
            legal = {
                "hold": {rk.RewardState.PENDING, rk.RewardState.APPROVED, rk.RewardState.HELD},
                "release": {rk.RewardState.HELD},
                "approve": {rk.RewardState.PENDING, rk.RewardState.HELD, rk.RewardState.APPROVED},
                "reject": {
                    rk.RewardState.PENDING,
                    rk.RewardState.HELD,
                    rk.RewardState.APPROVED,
                    rk.RewardState.REJECTED,
                    rk.RewardState.FRAUD,
                },
            }
            key = {"hold_until": "hold", "fraud": "reject"}.get(op, op)
            assert state not in legal[key], f"{op} of a {state} reward was refused"

    @rule(who=st.sampled_from(["alice", "dora"]), kind=st.sampled_from(["cash", "credit"]))
    def write_off(self, who: str, kind: str) -> None:
        self.engine.write_off(who, rk.Unit(kind, "USD"), actor="ops", reason="goodwill")

    # -- invariants -----------------------------------------------------------------------
    @invariant()
    def balances_equal_entries_and_nothing_is_paid_twice(self) -> None:
        check_ledger(self.engine.store, self.engine)
        check_paid_once(self.engine.store)
        dump = self.engine.store.dump()
        settled = {p.payout_id for p in dump["payouts"] if p.status is rk.PayoutStatus.PAID}
        # every payout the ledger counts as paid reached the provider, and the provider was
        # paid exactly what the ledger paid, less the clawbacks netted
        assert settled <= set(self.fulfiller.received)
        received: dict[tuple[str, str], Decimal] = {}
        for payout in self.fulfiller.received.values():
            key = (payout.participant_id, payout.kind)
            received[key] = received.get(key, Decimal(0)) + payout.amount.amount
        units = {r.reward_id: (r.participant_id, r.unit.kind) for r in dump["rewards"]}
        ledger: dict[tuple[str, str], Decimal] = {}
        for entry in dump["entries"]:
            sign = {rk.EntryKind.PAID: 1, rk.EntryKind.RECOVERED: -1}.get(entry.kind)
            if sign is not None:
                key = units[entry.reward_id]
                ledger[key] = ledger.get(key, Decimal(0)) + sign * entry.quantity
        assert {k: v for k, v in received.items() if v} == {k: v for k, v in ledger.items() if v}

    def teardown(self) -> None:
        if not hasattr(self, "engine"):
            return
        check_reversals(self.engine.store)
        check_outbox(self.engine.store)
        # None lost: once holds have run out and the provider works, every approved money
        # reward is paid, unless what its owner owes swallows it.
        self.fulfiller.failures = []
        self.clock.advance(timedelta(days=60))
        self.engine.settle()
        result = self.engine.payout()
        assert not result.failed
        for who in self.people:
            for line in self.engine.balance(who):
                if line.unit.kind not in MONEY or line.available <= 0:
                    continue
                net = (
                    line.available
                    if self.engine.program.negative_balance
                    else line.available - line.owed
                )
                assert net <= 0, f"{who} still has {line} approved after a clean payout"
        check_paid_once(self.engine.store)


LedgerLifecycle.TestCase.settings = settings(
    max_examples=50,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestLedgerLifecycle = LedgerLifecycle.TestCase
