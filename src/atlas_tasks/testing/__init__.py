"""Tools for testing atlas-tasks backends and code built on them.

* :class:`StoreTests` — the conformance suite every backend must pass. Subclass it in a test module and provide a
  ``store_factory`` fixture (a callable returning a fresh, empty store).
* :func:`make_state_machine` — a Hypothesis state machine comparing a store with a plain in-memory model.

This package imports pytest and Hypothesis; it is never imported by the library itself.
"""

from atlas_tasks.testing.conformance import StoreTests
from atlas_tasks.testing.state_machine import make_state_machine

__all__ = ["StoreTests", "make_state_machine"]
