"""What one campaign run found: counted runs, violations by kind (with a first example each), and lost data."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal

Scale = Literal["fast", "full"]


@dataclass
class Verdict:
    """The violations one check found, by kind, with the first example of each kind; and acknowledged items lost."""

    counts: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)
    lost: int = 0

    def add(self, kind: str, example: str = "") -> None:
        self.counts[kind] += 1
        self.examples.setdefault(kind, example[:400])

    def merge(self, other: Verdict, where: str = "") -> None:
        for kind, n in other.counts.items():
            self.counts[kind] += n
            if kind not in self.examples:
                self.examples[kind] = f"{where}: {other.examples.get(kind, '')}" if where else other.examples[kind]
        self.lost += other.lost

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def __bool__(self) -> bool:
        return self.total > 0


@dataclass
class Outcome:
    """One campaign against one variant of the store (``"store"`` for the real one, else a negative control)."""

    campaign: str
    variant: str
    runs: int = 0
    unit: str = "runs"
    verdict: Verdict = field(default_factory=Verdict)
    seconds: float = 0.0
    skipped: str | None = None
    details: dict[str, int | str] = field(default_factory=dict)

    @property
    def violations(self) -> int:
        return self.verdict.total

    @property
    def lost(self) -> int:
        return self.verdict.lost

    def describe(self) -> str:
        """A few lines for logs and assertion messages: counts by kind and one example of each."""
        if self.skipped:
            return f"{self.campaign} [{self.variant}] skipped: {self.skipped}"
        lines = [f"{self.campaign} [{self.variant}] {self.runs} {self.unit}, {self.violations} violations, "]
        lines[0] += f"{self.lost} acknowledged items lost, {self.seconds:.1f}s {self.details or ''}"
        for kind, n in self.verdict.counts.most_common():
            lines.append(f"  {n:6d} x {kind}: {self.verdict.examples.get(kind, '')}")
        return "\n".join(lines)


@contextmanager
def timed(outcome: Outcome) -> Iterator[Outcome]:
    """Record the wall time of the block in ``outcome.seconds``."""
    start = time.monotonic()
    try:
        yield outcome
    finally:
        outcome.seconds = time.monotonic() - start
