"""Tools for testing atlas-tasks backends and code built on them.

* :class:`StoreTests` — the conformance suite every backend must pass. Subclass it in a test module and provide a
  ``store_factory`` fixture (a callable returning a fresh, empty store).
* :mod:`atlas_tasks.testing.capabilities` — mixins for the rest of the contract (:class:`ListingTests`,
  :class:`LogTailTests`, :class:`ArtifactSizeTests`, :class:`UrlTests`) and for the optional capabilities
  (:class:`RunLeaseTests`, :class:`StampTests`, :class:`TombstoneTests`, skipped on a store without the capability).
* :func:`make_state_machine` — a Hypothesis state machine comparing a store with a plain in-memory model.

This package imports pytest and Hypothesis; it is never imported by the library itself.
"""

from atlas_tasks.testing.capabilities import (
    ArtifactSizeTests,
    ListingTests,
    LogTailTests,
    RunLeaseTests,
    StampTests,
    TombstoneTests,
    UrlTests,
)
from atlas_tasks.testing.conformance import StoreFixtures, StoreTests
from atlas_tasks.testing.state_machine import make_state_machine

__all__ = [
    "ArtifactSizeTests",
    "ListingTests",
    "LogTailTests",
    "RunLeaseTests",
    "StampTests",
    "StoreFixtures",
    "StoreTests",
    "TombstoneTests",
    "UrlTests",
    "make_state_machine",
]
