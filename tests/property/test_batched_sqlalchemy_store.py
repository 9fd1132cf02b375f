"""Batches on SQLAlchemyStore (one transaction, rows prefetched and writes buffered for the
whole batch) give what one event at a time on the in-memory store gives: on a SQLite file,
and on PostgreSQL and MariaDB when ``REFERRALKIT_TEST_POSTGRES_URL`` /
``REFERRALKIT_TEST_MARIADB_URL`` are set (their ``rk_*`` tables are emptied per example)."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from referralkit.testing.strategies import event_streams

sys.path.insert(0, str(Path(__file__).parent))
from test_batched_store import assert_batched_equals_single

sa = pytest.importorskip("sqlalchemy")

from referralkit import sql  # noqa: E402
from referralkit._adapters.sqlalchemy import SQLAlchemyStore  # noqa: E402

_SERVERS = {
    "postgres": os.environ.get("REFERRALKIT_TEST_POSTGRES_URL", ""),
    "mariadb": os.environ.get("REFERRALKIT_TEST_MARIADB_URL", ""),
}


@pytest.fixture(
    scope="module",
    params=[
        "sqlite",
        *(
            pytest.param(
                name,
                marks=pytest.mark.skipif(
                    not url, reason=f"set REFERRALKIT_TEST_{name.upper()}_URL"
                ),
            )
            for name, url in _SERVERS.items()
        ),
    ],
)
def database(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A SQLAlchemy engine whose referralkit tables exist (created once per module)."""
    if request.param == "sqlite":
        with tempfile.TemporaryDirectory(prefix="rk-batched-") as tmp:
            engine = sa.create_engine(f"sqlite:///{Path(tmp) / 'batched.sqlite3'}")
            SQLAlchemyStore(engine)
            yield engine
            engine.dispose()
        return
    engine = sa.create_engine(_SERVERS[request.param])
    sql.metadata.drop_all(engine)
    SQLAlchemyStore(engine)
    yield engine
    sql.metadata.drop_all(engine)
    engine.dispose()


def _empty(engine: Any) -> None:
    with engine.begin() as conn:
        for table in reversed(sql.metadata.sorted_tables):
            if table is not sql.schema:
                conn.execute(table.delete())


@settings(max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(event_streams(), st.integers(min_value=2, max_value=12))
def test_batched_deliveries_on_sqlalchemy_equal_single_deliveries_in_memory(
    database: Any, scenario: Any, batch_size: int
) -> None:
    """Every delivery (duplicates, retries and refunds that arrive too early included) in
    batches of ``batch_size`` between settlements: the same result per event, and the same
    records, ids included."""
    _empty(database)
    assert_batched_equals_single(scenario, SQLAlchemyStore(database), batch_size)
