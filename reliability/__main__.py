"""``python -m reliability [--fast] [--only T1a,T2] [--write docs/reliability.md]``: run the campaigns, print the table.

The full run (the default) writes docs/reliability.md; the fast run writes nothing unless ``--write`` is given.
Exit status 1 if the real store shows any violation or any negative control catches nothing.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from reliability.campaigns import CAMPAIGNS, Row, run_campaign
from reliability.outcome import Scale
from reliability.report import markdown, text_table, verdict_line

DOCS = Path(__file__).resolve().parent.parent / "docs" / "reliability.md"


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reliability", description=__doc__)
    parser.add_argument("--fast", action="store_true", help="the small subset the test suite runs")
    parser.add_argument(
        "--only", default="", help="comma-separated campaign ids (T1a,T1b,T1c,T2,V1,I1,F,F-real,N,H,L,R)"
    )
    parser.add_argument("--write", type=Path, default=None, help="where to write the markdown report")
    parser.add_argument("--no-write", action="store_true", help="do not write the report even in a full run")
    args = parser.parse_args(argv)
    scale: Scale = "fast" if args.fast else "full"
    only = {c.strip() for c in args.only.split(",") if c.strip()}
    chosen = [c for c in CAMPAIGNS if not only or c.id in only]
    started = time.monotonic()
    rows: list[Row] = []
    for campaign in chosen:
        _log(f"== {campaign.id}: {campaign.title}")
        rows += run_campaign(campaign, scale, _log)
    seconds = time.monotonic() - started
    print(text_table(rows))
    print(verdict_line(rows))
    target = args.write or (None if args.fast or args.no_write or only else DOCS)
    if target is not None:
        command = "python -m reliability" + (" --fast" if args.fast else "") + (f" --only {args.only}" if only else "")
        target.write_text(markdown(rows, seconds, command))
        print(f"wrote {target}")
    failures = [f for r in rows for f in r.failures]
    for failure in failures:
        print(f"FAIL {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
