"""The table of figures, for the terminal and for docs/reliability.md."""

from __future__ import annotations

import os
import platform
import re
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from reliability import weaken
from reliability.campaigns import CAMPAIGNS, Row
from reliability.outcome import Outcome
from reliability.scratch import SHM, fs_type

SCRATCH = re.compile(r"/(?:dev/shm|tmp|var/tmp)/(?:pytest-of-[^/]+/)?atlas-rel-[^/ ]+/")
HEADER = ("Campaign", "Runs / states", "Violations", "Data lost", "Negative controls: violations (data lost)", "Time")


def _cells(row: Row) -> tuple[str, ...]:
    real = row.real
    controls = ", ".join(f"{c.variant}: {_control(c)}" for c in row.controls)
    if real.skipped:
        return (real.campaign, "skipped", "-", "-", controls or "-", f"{real.seconds:.0f} s")
    runs = f"{real.runs:,} {real.unit}"
    return (real.campaign, runs, f"{real.violations:,}", f"{real.lost:,}", controls, f"{_time(row):.0f} s")


def _control(c: Outcome) -> str:
    """A control's violations, and the acknowledged items it lost; (!) marks one that caught nothing."""
    if c.skipped:
        return "skipped"
    return f"{c.violations:,}" + (f" ({c.lost:,} lost)" if c.lost else "") + ("" if c.violations else " (!)")


def _time(row: Row) -> float:
    return row.real.seconds + sum(c.seconds for c in row.controls)


def text_table(rows: list[Row]) -> str:
    """A plain-text table for the terminal."""
    cells = [HEADER, *(_cells(r) for r in rows)]
    widths = [max(len(c[i]) for c in cells) for i in range(len(HEADER))]
    lines = ["  ".join(c[i].ljust(widths[i]) for i in range(len(HEADER))) for c in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(_cells(r)) + " |" for r in rows]
    return "\n".join(lines)


def machine() -> str:
    """What the figures were measured on."""
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    tmp = tempfile.gettempdir()
    shm = f", {SHM} {fs_type(SHM)}" if SHM.is_dir() else ""
    return (
        f"{platform.system()} {platform.release()} ({platform.machine()}), {cpu}, {os.cpu_count()} cores, "
        f"{mem:.0f} GiB RAM; Python {sys.version.split()[0]}; {tmp} on {fs_type(Path(tmp))}{shm}; "
        f"running as {'root' if os.geteuid() == 0 else 'an unprivileged user'}"
    )


def verdict_line(rows: list[Row]) -> str:
    failures = [f for r in rows for f in r.failures]
    skipped = [r.real.campaign for r in rows if r.real.skipped]
    passed = len(rows) - len(skipped) - len({f.split(":")[0] for f in failures})
    parts = [f"{passed} of {len(rows)} campaigns passed"]
    if skipped:
        parts.append(f"{len(skipped)} skipped (not counted as passed): {', '.join(skipped)}")
    if failures:
        parts.append(f"{len(failures)} failure{'s' if len(failures) > 1 else ''}")
    return "; ".join(parts)


def _findings(outcomes: list[Outcome]) -> list[str]:
    lines = []
    for o in outcomes:
        if o.skipped:
            lines.append(f"* **{o.campaign} [{o.variant}]** skipped: {o.skipped}")
            continue
        for kind, n in o.verdict.counts.most_common():
            example = SCRATCH.sub(".../", o.verdict.examples.get(kind, ""))
            example = example.replace("|", "\\|").replace("\n", " ").replace("`", "'")
            lines.append(f"* **{o.campaign} [{o.variant}]** {n} x {kind} — e.g. `{example[:300]}`")
    return lines


def markdown(rows: list[Row], seconds: float, command: str) -> str:
    """The whole docs/reliability.md."""
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    real = [r.real for r in rows]
    controls = [c for r in rows for c in r.controls]
    parts = [
        "# Reliability figures",
        "",
        f"Measured {now} by `{command}` in {seconds / 60:.1f} minutes, on {machine()}.",
        "Method and invariants: RELIABILITY.md (project notes), docs/durability.md, and the docstrings of",
        "`reliability/` (one module per campaign). Every figure below comes from that run.",
        "",
        f"**Verdict: {verdict_line(rows)}.**",
        "",
        markdown_table(rows),
        "",
        "A negative control is the same campaign run against a deliberately weakened store; it must report",
        'violations, or the campaign measures nothing and the run fails. "Data lost" counts acknowledged items',
        "(tasks, task states, log lines, artifacts, checkpoints) missing after recovery.",
        "",
        "## What each campaign did",
        "",
        *_details(rows),
        "",
        "## Method",
        "",
        *_methods(),
        "## Violations in the real store",
        "",
        *(_findings(real) or ["None."]),
        "",
        "## What the negative controls caught",
        "",
        *_controls_legend(),
        "",
        *_findings(controls),
        "",
    ]
    return "\n".join(parts)


def _details(rows: list[Row]) -> list[str]:
    out = []
    titles = {c.id: c.title for c in CAMPAIGNS}
    for r in rows:
        cid = r.real.campaign.split()[0]
        extra = ", ".join(f"{k}: {v}" for k, v in r.real.details.items())
        skipped = f" Skipped: {r.real.skipped}." if r.real.skipped else ""
        out.append(f"* **{r.real.campaign}** — {titles.get(cid, '')}.{skipped} {extra}".rstrip())
    return out


def _methods() -> list[str]:
    """Each campaign module's docstring: what it does and what it checks."""
    out: list[str] = []
    for module in dict.fromkeys(sys.modules[c.run.__module__] for c in CAMPAIGNS):
        ids = ", ".join(c.id for c in CAMPAIGNS if c.run.__module__ == module.__name__)
        out += [f"### {ids} (`{module.__name__}`)", "", (module.__doc__ or "").strip(), ""]
    return out


def _controls_legend() -> list[str]:
    return [f"* `{name}`: {(fn.__doc__ or '').strip()}" for name, fn in weaken.VARIANTS.items()]
