"""The in-memory store (the reference backend) against the shared Store conformance suite."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from atlas_tasks.backends.memory import MemoryStore
from atlas_tasks.testing import StoreTests


class TestMemoryStoreConformance(StoreTests):
    """MemoryStore passes every conformance test."""

    @pytest.fixture
    def store_factory(self) -> Callable[[], MemoryStore]:
        store = MemoryStore()
        return lambda: store
