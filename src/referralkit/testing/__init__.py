"""Tools to property-test referral programs and stores.

Two modules, also re-exported here:

- [`referralkit.testing.strategies`][referralkit.testing.strategies]: hypothesis strategies
  for money, datetimes, participants, reward values and programs, and ``event_streams``,
  which draws whole [`Scenario`][referralkit.testing.strategies.Scenario]s (sign-ups with valid,
  unknown and own codes, purchases, refunds, chargebacks, delivered with duplicates,
  retries and reordering) to play against an engine. Needs the ``testing`` extra
  (``pip install 'referralkit[testing]'``); its names load on first use.
- [`referralkit.testing.invariants`][referralkit.testing.invariants]: ``check_*``
  functions that assert the design invariants over a store, and ``ledger_snapshot`` for
  determinism tests.
- [`StoreContract`][referralkit.testing.StoreContract] (in ``referralkit.testing.contract``):
  the pytest suite every [`Store`][referralkit.Store] passes; subclass it to test your own.

```python
from hypothesis import given

from referralkit.testing import check_all, check_playback
from referralkit.testing.strategies import event_streams, programs


@given(event_streams(programs(currency="EUR", sided="double")))
def test_program_invariants(scenario):
    engine = scenario.new_engine()
    check_playback(scenario.play(engine))
    check_all(engine.store, engine)
```
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from referralkit.testing.invariants import (
    LedgerSnapshot,
    check_all,
    check_ledger,
    check_one_referrer,
    check_outbox,
    check_paid_once,
    check_playback,
    check_reversals,
    ledger_snapshot,
)

if TYPE_CHECKING:
    from referralkit.testing.contract import StoreContract
    from referralkit.testing.strategies import (
        CodeForm,
        Deliver,
        Delivery,
        Playback,
        Scenario,
        Settle,
        Step,
        StepResult,
        copy_codes,
        replay,
    )

__all__ = [
    "CodeForm",
    "Deliver",
    "Delivery",
    "LedgerSnapshot",
    "Playback",
    "Scenario",
    "Settle",
    "Step",
    "StepResult",
    "StoreContract",
    "check_all",
    "check_ledger",
    "check_one_referrer",
    "check_outbox",
    "check_paid_once",
    "check_playback",
    "check_reversals",
    "copy_codes",
    "ledger_snapshot",
    "replay",
]

_FROM_STRATEGIES = frozenset(
    {
        "CodeForm",
        "Deliver",
        "Delivery",
        "Playback",
        "Scenario",
        "Settle",
        "Step",
        "StepResult",
        "copy_codes",
        "replay",
    }
)


def __getattr__(name: str) -> Any:
    """Load the scenario names from ``strategies`` (which needs hypothesis) on first use."""
    if name == "StoreContract":  # needs pytest
        value = importlib.import_module("referralkit.testing.contract").StoreContract
        globals()[name] = value
        return value
    if name in _FROM_STRATEGIES:
        module = importlib.import_module("referralkit.testing.strategies")
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
