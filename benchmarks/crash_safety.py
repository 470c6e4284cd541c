"""Crash-safety benchmark: SIGKILL an editing/saving/exporting process and ``trackpaint
propagate`` over an existing output, 100 times each.

Editing kills: each round starts a child that resumes the project left by the previous kill
(from the autosave when that is newer), edits, saves, autosaves and exports DAVIS/COCO in a loop,
and kills it with SIGKILL after a random delay; then checks that every save/autosave/export the
child reported as finished is fully present and that nothing visible is half-written.

Propagate kills: each round runs ``trackpaint propagate CLIP --out OUT --project P --model lab``
(40 frames of 48x64) over the previous result from the other initial mask, and kills it at a
random moment after it started writing (every third kill aimed at the commit); then checks that
OUT and P each hold the old or the new complete result, never a mix, and that only the killed
run's own staging copies are left (the next run removes them).

``tests/robustness/crash_harness.py`` has the exact rules.

Usage::

    .venv/bin/python benchmarks/crash_safety.py [--kills 100] [--propagate-kills 100]
        [--seed 0] [--max-delay 0.4] [--only edit|propagate]

Prints a table per kind of kill; exits 1 when any check failed.
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

from tests.robustness.crash_harness import kill_once, run_propagate_kills  # noqa: E402


def edit_kills(args: argparse.Namespace) -> list[str]:
    """The editing/saving/exporting kills; prints their table, returns the failures."""
    import random

    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="crash-safety-") as tmp:
        workdir = args.workdir / "edit" if args.workdir else Path(tmp)
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

    print("Editing, saving, exporting:")
    print(f"| kills | failed checks | wall time | kill landed in ({', '.join(sorted(phases))}) |")
    print("|---|---|---|---|")
    landed = ", ".join(f"{phases[p]}" for p in sorted(phases))
    print(f"| {args.kills} | {len(failures)} | {seconds:.0f} s | {landed} |")
    if last is not None:
        print(
            f"final state: project holds edit {last.project_edit}, autosave {last.autosave_edit}, "
            f"DAVIS {last.davis_edit}, COCO {last.coco_edit}; hidden leftovers (temp files, "
            f"staging/old folders, scratch copies) after {args.kills} kills: "
            f"{last.hidden_leftovers} ({dict(sorted(last.leftover_kinds.items()))})"
        )
    return failures


def propagate_kills(args: argparse.Namespace) -> list[str]:
    """The ``trackpaint propagate`` kills; prints their table, returns the failures."""
    with tempfile.TemporaryDirectory(prefix="crash-propagate-") as tmp:
        workdir = args.workdir / "propagate" if args.workdir else Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        results = run_propagate_kills(workdir, args.propagate_kills, seed=args.seed)
        seconds = time.perf_counter() - t0
    failures = [f"kill {i} ({r.phase}): {p}" for i, r in enumerate(results) for p in r.problems]
    phases = Counter(r.phase for r in results)
    # what each target held after the kill: the previous result, or the new one
    before = [(2, 2)] + [(r.out_holds, r.project_holds) for r in results[:-1]]
    out_new = sum(r.out_holds is not None and r.out_holds != b[0] for r, b in zip(results, before))
    p_new = sum(
        r.project_holds is not None and r.project_holds != b[1] for r, b in zip(results, before)
    )
    print("Propagate over an existing output (--out and --project):")
    print(
        "| kills | failed checks | wall time | kill landed in (committing, finished, "
        "propagating) | OUT old / new | project old / new | max hidden leftovers |"
    )
    print("|---|---|---|---|---|---|---|")
    landed = ", ".join(str(phases[p]) for p in ("committing", "finished", "propagating"))
    n = len(results)
    print(
        f"| {n} | {len(failures)} | {seconds:.0f} s | {landed} | {n - out_new} / {out_new} | "
        f"{n - p_new} / {p_new} | {max((r.leftovers for r in results), default=0)} |"
    )
    return failures


def main(argv: list[str] | None = None) -> int:
    """Run the kills and print the results tables; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=100, help="editing/saving/exporting kills")
    parser.add_argument("--propagate-kills", type=int, default=100)
    parser.add_argument("--only", choices=("edit", "propagate"), default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-delay", type=float, default=0.4, help="seconds after ready")
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temp folder")
    parser.add_argument("--stop-on-failure", action="store_true", help="stop at the first one")
    args = parser.parse_args(argv)

    failures: list[str] = []
    if args.only in (None, "edit"):
        failures += edit_kills(args)
    if args.only in (None, "propagate"):
        failures += propagate_kills(args)
    for line in failures:
        print("FAIL", line)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
