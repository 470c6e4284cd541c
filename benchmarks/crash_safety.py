"""Crash-safety benchmark: SIGKILL an editing/saving/exporting process 100 times.

Each round starts a child that resumes the project left by the previous kill (from the autosave
when that is newer), edits, saves, autosaves and exports DAVIS/COCO in a loop, and kills it with
SIGKILL after a random delay; then checks that every save/autosave/export the child reported as
finished is fully present and that nothing visible is half-written
(``tests/robustness/crash_harness.py`` has the exact rules).

Usage::

    .venv/bin/python benchmarks/crash_safety.py [--kills 100] [--seed 0] [--max-delay 0.4]

Prints a table of where the kills landed and what failed; exits 1 when any check failed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.robustness.crash_harness import kill_once  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Run the kills and print the results table; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-delay", type=float, default=0.4, help="seconds after ready")
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temp folder")
    parser.add_argument("--stop-on-failure", action="store_true", help="stop at the first one")
    args = parser.parse_args(argv)

    import random

    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="crash-safety-") as tmp:
        workdir = args.workdir or Path(tmp)
        scratch = workdir / "scratch"
        scratch.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        phases: Counter[str] = Counter()
        failures: list[str] = []
        last = None
        for i in range(args.kills):
            result = kill_once(workdir, scratch, rng.uniform(0.0, args.max_delay))
            phases[result.phase] += 1
            failures += [f"kill {i} ({result.phase}): {p}" for p in result.problems]
            last = result
            if result.problems and args.stop_on_failure:
                break
        seconds = time.perf_counter() - t0

    print(f"| kills | failed checks | wall time | kill landed in ({', '.join(sorted(phases))}) |")
    print("|---|---|---|---|")
    landed = ", ".join(f"{phases[p]}" for p in sorted(phases))
    print(f"| {args.kills} | {len(failures)} | {seconds:.0f} s | {landed} |")
    if last is not None:
        print(
            f"final state: project holds edit {last.project_edit}, autosave {last.autosave_edit}, "
            f"DAVIS {last.davis_edit}, COCO {last.coco_edit}; hidden leftovers (temp files, "
            f"staging/old folders, scratch copies) after {args.kills} kills: "
            f"{last.hidden_leftovers}"
        )
    for line in failures:
        print("FAIL", line)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
