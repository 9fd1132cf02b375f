"""InMemoryStore, the reference store, against the store contract."""

from __future__ import annotations

import referralkit as rk
from referralkit.testing.contract import StoreContract


class TestInMemoryStore(StoreContract):
    """The reference store passes the contract."""

    def make_store(self) -> rk.Store:
        return rk.InMemoryStore()
