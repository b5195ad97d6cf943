"""The async API mirrors the contract: every method of Store and of each capability, with the same parameters.

The conformance suite reaches the async store through the sync facade and skips what a capability check refuses, so
a method added to the contract but not to the async side would only be skipped there: this test names it instead.
"""

from __future__ import annotations

import inspect

import pytest

from atlas_tasks.aio._store import AsyncStore
from atlas_tasks.store import Store
from atlas_tasks.testing.sync_over_async import SyncOverAsync


def _methods(protocol: type) -> dict[str, inspect.Signature]:
    """The public methods a protocol declares itself (not inherited from object or Protocol)."""
    found = {}
    for name, value in vars(protocol).items():
        if name.startswith("_") or not callable(value):
            continue
        found[name] = inspect.signature(value)
    return found


def _params(signature: inspect.Signature) -> list[tuple[str, object, object]]:
    return [(p.name, p.kind, p.default) for p in signature.parameters.values()]


PAIRS = [(Store, AsyncStore, SyncOverAsync)] + [
    (capability, mixin, facade)
    for (capability, mixin), (_, facade) in zip(AsyncStore._mixins, SyncOverAsync._mixins, strict=True)
]


@pytest.mark.parametrize(("protocol", "async_class", "facade"), PAIRS, ids=[p[0].__name__ for p in PAIRS])
def test_every_contract_method_has_an_async_twin_with_the_same_parameters(
    protocol: type, async_class: type, facade: type
) -> None:
    """Each method of the protocol exists on the async mixin and on the sync facade, taking the same parameters."""
    for name, signature in _methods(protocol).items():
        if isinstance(inspect.getattr_static(protocol, name), property):
            continue  # plain attributes (home, url): no I/O, kept as they are
        for cls in (async_class, facade):
            assert hasattr(cls, name), f"{cls.__name__} lacks {protocol.__name__}.{name}"
            assert _params(inspect.signature(getattr(cls, name))) == _params(signature), (
                f"{cls.__name__}.{name} takes other parameters than {protocol.__name__}.{name}"
            )
