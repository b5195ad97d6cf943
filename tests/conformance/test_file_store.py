"""The file store against the shared Store conformance suite."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from atlas_tasks import FileStore
from atlas_tasks.testing import StoreTests


class TestFileStoreConformance(StoreTests):
    """FileStore passes every conformance test."""

    @pytest.fixture
    def store_factory(self, tmp_path_factory: pytest.TempPathFactory) -> Callable[[], FileStore]:
        return lambda: FileStore(tmp_path_factory.mktemp("home"), lock_timeout=30)
