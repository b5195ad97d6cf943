"""The in-memory store (the reference backend) against the shared Store conformance suite and capability mixins."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from atlas_tasks.backends.memory import MemoryStore
from atlas_tasks.store import Store
from atlas_tasks.testing import (
    ArtifactSizeTests,
    ListingTests,
    LogTailTests,
    RunLeaseTests,
    StampTests,
    StoreTests,
    TombstoneTests,
    UrlTests,
)


class TestMemoryStoreConformance(StoreTests):
    """MemoryStore passes every conformance test."""

    @pytest.fixture
    def store_factory(self) -> Callable[[], MemoryStore]:
        store = MemoryStore()
        return lambda: store


class TestMemoryStoreContract(
    ListingTests, LogTailTests, ArtifactSizeTests, RunLeaseTests, StampTests, TombstoneTests, UrlTests
):
    """MemoryStore passes the listing, log, size, lease and URL mixins (it has no change stamps: those skip)."""

    @pytest.fixture
    def store_factory(self) -> Callable[[], MemoryStore]:
        return MemoryStore

    def damage_task(self, store: Store, workspace: str, task_id: str) -> None:
        """Replace the task's stored bytes with a JSON array, behind the store's back."""
        assert isinstance(store, MemoryStore)
        store._workspaces[workspace].tasks[task_id].doc = b"[1, 2]\n"
