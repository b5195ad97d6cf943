"""The campaigns, their negative controls, and how a run of all of them is judged."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from reliability import crashpoints, faults, hostile, lifecycle, naming, powercut, powerloss, retention, storm
from reliability.outcome import Outcome, Scale

Runner = Callable[..., Outcome | list[Outcome]]


@dataclass(frozen=True)
class Campaign:
    id: str
    title: str
    run: Runner
    controls: tuple[str, ...]
    # Controls run at the fast scale even in a full run (they only have to be caught), except where noted.
    control_scale: Scale = "fast"


CAMPAIGNS = [
    Campaign(
        "T1a", "crash-point enumeration (os._exit / SIGKILL at every fs call)", crashpoints.run, crashpoints.CONTROLS
    ),
    Campaign("T1b", "power-loss model (unsynced changes lost, torn, zeroed)", powerloss.run, powerloss.CONTROLS),
    Campaign("T1c", "real power cuts (FS_IOC_SHUTDOWN, remount)", powercut.run, powercut.CONTROLS, "full"),
    Campaign("T2", "process storm: 8 processes x 2 threads, SIGKILLs", storm.run_t2, ("no-lock", "lockf")),
    Campaign("V1", "concurrent versioned artifacts", storm.run_v1, ("stat-then-write",)),
    Campaign("I1", "thousands of creations in one (frozen) second", storm.run_i1, ("no-mkdir-reservation",)),
    Campaign("F", "fault injection at every fs call (5 errnos, once/persistent)", faults.run_injected, faults.CONTROLS),
    Campaign(
        "F-real", "real faults: 1 MiB tmpfs, RLIMIT_FSIZE, read-only remount", faults.run_real, ("in-place-write",)
    ),
    Campaign("N", "names (10^5 per kind), planted symlinks, racing swaps", naming.run, ("no-name-check",)),
    Campaign(
        "H", "hostile entries: special files, odd entries, deep JSON, under every reader", hostile.run, hostile.CONTROLS
    ),
    Campaign("L", "lifecycle under kill -9: run, retry, fork, cancel", lifecycle.run, lifecycle.CONTROLS),
    Campaign("R", "retention under kill -9: gc and import", retention.run, retention.CONTROLS),
]


def as_list(result: Outcome | list[Outcome]) -> list[Outcome]:
    return result if isinstance(result, list) else [result]


@dataclass
class Row:
    """One line of the table: the real store and its negative controls (T1c has one row per filesystem)."""

    campaign: Campaign
    real: Outcome
    controls: list[Outcome] = field(default_factory=list)

    @property
    def failures(self) -> list[str]:
        """Why this row fails the run: violations in the real store, or a control that caught nothing."""
        out = []
        if not self.real.skipped and self.real.violations:
            out.append(f"{self.real.campaign}: {self.real.violations} violations in the real store")
        for c in self.controls:
            if not c.skipped and not c.violations:
                out.append(f"{c.campaign}: negative control {c.variant} found nothing: the campaign is broken")
        return out


def run_campaign(campaign: Campaign, scale: Scale, log: Callable[[str], None]) -> list[Row]:
    """The campaign against the real store, then against each of its negative controls."""
    reals = as_list(campaign.run(scale, None))
    for r in reals:
        log(r.describe())
    rows = [Row(campaign, r) for r in reals]
    for variant in campaign.controls:
        ctrl_scale: Scale = "fast" if scale == "fast" else campaign.control_scale
        for i, c in enumerate(as_list(campaign.run(ctrl_scale, variant))):
            log(c.describe())
            rows[i].controls.append(c)
    return rows
