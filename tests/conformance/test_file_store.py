"""The file store against the shared Store conformance suite and capability mixins."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from atlas_tasks import FileStore
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


class TestFileStoreConformance(StoreTests):
    """FileStore passes every conformance test."""

    @pytest.fixture
    def store_factory(self, tmp_path_factory: pytest.TempPathFactory) -> Callable[[], FileStore]:
        return lambda: FileStore(tmp_path_factory.mktemp("home"), lock_timeout=30)


class TestFileStoreContract(
    ListingTests, LogTailTests, ArtifactSizeTests, RunLeaseTests, StampTests, TombstoneTests, UrlTests
):
    """FileStore passes the listing, log, size, lease, change-stamp and URL mixins."""

    @pytest.fixture
    def store_factory(self, tmp_path_factory: pytest.TempPathFactory) -> Callable[[], FileStore]:
        return lambda: FileStore(tmp_path_factory.mktemp("home"), lock_timeout=30)

    def damage_task(self, store: Store, workspace: str, task_id: str) -> None:
        """Overwrite task.json in place with a JSON array (what a bad hand edit leaves)."""
        assert isinstance(store, FileStore)
        (store.task_path(workspace, task_id) / "task.json").write_bytes(b"[1, 2]\n")
