"""The ``referralkit`` command line (the demo), the examples and the engine benchmark."""

from __future__ import annotations

import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

import referralkit as rk
from referralkit import cli

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
CODE = re.compile(r"\b[0-9A-HJKMNP-TV-Z]{8}\b")  # an issued code: 8 Crockford characters


@pytest.fixture(scope="module")
def demo_run() -> cli.DemoRun:
    return cli.run_demo(seed=7, participants=40)


def demo_output(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert cli.main(["demo", *args]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    return out


def mask_codes(text: str) -> str:
    return CODE.sub("<code>", text)


# -- the demo ---------------------------------------------------------------------------


def test_demo_prints_the_three_tables_and_a_summary(capsys: pytest.CaptureFixture[str]) -> None:
    out = demo_output(capsys)
    for header in (
        "referrer  referee",
        "reward      participant  role",
        "participant  unit",
    ):
        assert header in out
    assert re.search(r"^Referrals \(\d+\)$", out, re.M)
    assert re.search(r"^Ledger \(\d+ rewards; settled at 2026-02-17 00:00 UTC\)$", out, re.M)
    assert re.search(r"^Balances$", out, re.M)
    assert re.search(r"^Summary \(seed 7: 40 participants", out, re.M)
    assert re.search(r"referrals +\d+ created, 3 refused \(self_referral 1, unknown_code 2\)", out)
    assert re.search(r"duplicates +1 delivered again", out)


def test_demo_output_fits_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    lines = demo_output(capsys).splitlines()
    assert len(lines) <= 85
    assert max(map(len, lines)) <= 100
    assert all(line == line.rstrip() for line in lines)


def test_demo_ledger_shows_every_state_and_the_program_values(
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = demo_output(capsys)
    ledger = out.split("\n\nLedger", 1)[1].split("\n\nBalances", 1)[0]
    rows = ledger.splitlines()[3:]
    assert rows
    for state in ("pending", "approved", "reversed"):
        assert any(f"  {state}  " in row for row in rows), state
    assert all(
        ("referrer  20.00 USD cash" in row) or ("referee   10.00 USD credit" in row) for row in rows
    )
    assert all(re.match(r"  rwd_[0-9a-f]{6}  ", row) for row in rows)


def test_demo_is_deterministic_from_its_seed_but_for_the_random_codes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    first = mask_codes(demo_output(capsys, "--seed", "3"))
    again = mask_codes(demo_output(capsys, "--seed", "3"))
    other = mask_codes(demo_output(capsys, "--seed", "4"))
    assert first == again
    assert first != other


def test_demo_participants_option_sets_the_population(capsys: pytest.CaptureFixture[str]) -> None:
    out = demo_output(capsys, "--participants", "12", "--seed", "1")
    assert "Summary (seed 1: 12 participants, 2 of them with a code)" in out


def test_demo_run_tells_the_events_and_their_outcomes(demo_run: cli.DemoRun) -> None:
    outcomes = demo_run.outcomes
    fresh = [o for o in outcomes if not o.duplicate]
    reasons = [code for o in fresh for code in o.reasons()]
    assert len(outcomes) - len(fresh) == 1
    assert reasons.count("referral.unknown_code") == 2
    assert reasons.count("referral.self_referral") == 1
    assert reasons.count("reward.reversed") == 4  # both sides of one partial and one full refund
    assert {o.event_type for o in fresh} == {"click", "signup", "purchase", "refund"}
    assert sum(o.event_type == "signup" for o in fresh) == 40
    assert demo_run.approved > 0


def test_demo_balances_agree_with_the_ledger(demo_run: cli.DemoRun) -> None:
    engine = demo_run.engine
    granted = sum(len(o.grants) for o in demo_run.outcomes if not o.duplicate)
    views = [v for who in demo_run.people for v in engine.rewards_for(who)]
    assert len(views) == granted
    for unit, value in ((rk.Unit("cash", "USD"), 20), (rk.Unit("credit", "USD"), 10)):
        mine = [v for v in views if v.reward.unit == unit]
        lifetime = sum((engine.balance(w)[unit].lifetime for w in demo_run.people), Decimal(0))
        assert sum((v.granted for v in mine), Decimal(0)) == value * len(mine)
        assert lifetime == sum((v.outstanding for v in mine), Decimal(0))
    settled = demo_run.settled_at
    for view in views:
        if view.state is rk.RewardState.APPROVED:
            assert view.reward.payable_at <= settled
        if view.state is rk.RewardState.PENDING:
            assert view.reward.payable_at > settled


def test_make_store_returns_a_fresh_store() -> None:
    first, second = cli.make_store(), cli.make_store()
    assert isinstance(first, rk.Store)
    assert first is not second


def test_run_demo_refuses_a_population_too_small_for_its_story() -> None:
    with pytest.raises(ValueError, match="participants=3"):
        cli.run_demo(participants=3)


# -- usage errors -----------------------------------------------------------------------


def test_no_command_prints_usage_and_returns_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("usage: referralkit")
    assert "a command is required" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["nope"],
        ["demo", "--seed", "x"],
        ["demo", "--participants", "0"],
        ["demo", "--participants", "many"],
        ["demo", "--bogus"],
    ],
)
def test_bad_usage_prints_usage_and_returns_2(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "usage: referralkit" in err
    assert "error:" in err


def test_help_returns_0_and_lists_the_demo(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == 0
    assert "demo" in capsys.readouterr().out


def test_the_console_script_runs_the_demo() -> None:
    script = Path(sys.executable).with_name("referralkit")
    if not script.exists():
        pytest.skip(f"no console script next to {sys.executable}; install the package")
    done = subprocess.run(
        [str(script), "demo", "--participants", "10"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Summary (seed 7: 10 participants" in done.stdout


# -- examples and benchmark --------------------------------------------------------------


def test_there_are_examples() -> None:
    assert {p.name for p in EXAMPLES} >= {"quickstart.py", "double_sided_program.py"}


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs_standalone(example: Path, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(example)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()
    assert done.stderr == ""


def test_quickstart_prints_the_explanation_and_the_balances() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "[double_sided] granted: referrer alice earns 20.00 USD cash" in done.stdout
    assert "alice: 20.00 USD cash available" in done.stdout
    assert "bob: 10.00 USD credit available" in done.stdout


def test_engine_bench_prints_one_line() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "engine_bench.py"), "--events", "1000"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert re.fullmatch(
        r"engine_bench: 1000 events \(300 clicks, 250 signups, 350 purchases, 100 refunds\) "
        r"on InMemoryStore: handle\(\) [\d,]+ events/s; "
        r"handle_many\(batch_size=500\) [\d,]+ events/s\n",
        done.stdout,
    )


def test_codes_bench_prints_rate_and_collisions() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "codes_bench.py"), "--codes", "1000"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert re.fullmatch(
        r"codes_bench: 1,000 codes of 8 characters \(40\.0 bits\) in [\d.]+ s, [\d,]+ codes/s; "
        r"\d+ collision\(s\), [\d.e-]+ equal pairs expected, birthday bound [\d.e-]+\n",
        done.stdout,
    )


def test_store_bench_prints_each_store_against_both_floors() -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "store_bench.py"),
            "--events",
            "400",
            "--batch",
            "100",
            "--postgres",
            "",
            "--mariadb",
            "",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    lines = done.stdout.splitlines()
    assert (
        lines[0] == "store_bench: 400 events (100 for one transaction per event), synchronous=FULL"
    )
    labels = [re.split(r"\s{2,}", line.strip())[0] for line in lines[1:-1]]
    assert labels == [
        "SQLite, one transaction per event",
        "SQLite, batched (100 per transaction)",
        "raw sqlite3 executemany floor (same rows)",
        "the same rows in 4 transactions",
        "its SQL replayed raw (no engine)",
    ]
    # The replay is checked against the batched run's rows before it is printed.
    assert re.fullmatch(
        r"  the batched run spent -?\d+ % of its time outside the SQL it sent "
        r"\(in referralkit's Python\)",
        lines[-1],
    ), lines[-1]
    for line in lines[1:-1]:
        assert re.search(r"[\d,]+ events/s  floor is +[\d.]+x faster$", line), line


def test_stream_bench_prints_both_peaks_and_their_ratio() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "stream_bench.py"), "--events", "300"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    lines = done.stdout.splitlines()
    assert lines[0] == "stream_bench: 300 events, batches of 500, SQLite file"
    for line, name in zip(lines[1:3], ("handle_many", "handle_stream"), strict=True):
        assert re.fullmatch(rf"  {name} +peak +[\d.]+ MiB +[\d,]+ events/s", line), line
    assert re.fullmatch(r"  handle_many's peak is [\d.]+x handle_stream's", lines[3]), lines[3]
