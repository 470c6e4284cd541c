"""Time-bounded hypothesis fuzzing of the loaders: video folder, video file, mask PNG, project
file (byte mutations and SQL hand edits), COCO JSON import.

Each target runs in its own worker process for ``--seconds`` (so a crash inside FFmpeg, libpng
or SQLite shows up as a finding instead of killing the run). The targets and strategies are in
``tests/robustness/fuzz_targets.py``; an outcome other than success or the loader's
TrackpaintError subclass is a finding. Findings are deduplicated by exception type and raising
line; the smallest input of each is pickled to ``--findings`` for reproduction
(``python -c "import pickle; print(pickle.load(open(F, 'rb')))"``).

Usage::

    .venv/bin/python benchmarks/fuzz_loaders.py [--seconds 30] [--targets "mask png,coco json"]

Prints one table row per target; exits 1 when there are findings.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
MEMORY_CAP = 4 * 2**30  # bytes of address space per worker


def worker(name: str, seconds: float, findings_dir: Path) -> dict[str, Any]:
    """Fuzz one target for ``seconds``; return counts and findings (run in a child process).

    The address space is capped at ``MEMORY_CAP`` so an input that makes a loader allocate
    without bound fails fast with MemoryError (a finding) instead of exhausting the machine.
    """
    import resource

    from hypothesis import HealthCheck, given, settings

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))

    from tests.robustness.fuzz_targets import TARGETS, in_fresh_dir

    target, strategy = TARGETS[name]
    slug = name.replace(" ", "_")
    current = findings_dir / f"{slug}.current.pickle"
    found: dict[str, dict[str, Any]] = {}
    examples = 0
    deadline = time.monotonic() + seconds

    @settings(
        max_examples=50, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(strategy())
    def run(value: Any) -> None:
        nonlocal examples
        if time.monotonic() > deadline:
            return
        examples += 1
        current.write_bytes(pickle.dumps(value))
        try:
            in_fresh_dir(target, value)
        except Exception as exc:  # every unexpected exception is a finding, keep fuzzing
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            key = f"{type(exc).__name__} at {Path(frame.filename).name}:{frame.lineno}"
            size = len(repr(value))
            if key not in found or size < found[key]["size"]:
                index = len(found) if key not in found else found[key]["index"]
                path = findings_dir / f"{slug}.{index}.pickle"
                path.write_bytes(pickle.dumps(value))
                found[key] = {
                    "index": index,
                    "size": size,
                    "message": " ".join(str(exc).split())[:200],
                    "input": str(path),
                }

    while time.monotonic() < deadline:
        run()
    current.unlink(missing_ok=True)
    return {"examples": examples, "findings": found}


def run_target(name: str, seconds: float, findings_dir: Path) -> dict[str, Any]:
    """Run :func:`worker` for ``name`` in a child process; a crash becomes a finding."""
    t0 = time.perf_counter()
    command = [sys.executable, __file__, "--worker", name, "--seconds", str(seconds)]
    done = subprocess.run(
        [*command, "--findings", str(findings_dir)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "OPENCV_LOG_LEVEL": "ERROR"},
        timeout=seconds + 300,
        check=False,
    )
    wall = time.perf_counter() - t0
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode == 0 and lines:
        result = json.loads(lines[-1])
    else:
        slug = name.replace(" ", "_")
        crash = (
            f"killed by {signal.Signals(-done.returncode).name}"
            if done.returncode < 0
            else f"exit status {done.returncode}: {done.stderr.strip()[-300:]}"
        )
        result = {
            "examples": -1,
            "findings": {
                f"worker crashed ({crash})": {
                    "message": crash,
                    "input": str(findings_dir / f"{slug}.current.pickle"),
                }
            },
        }
    result["wall"] = wall
    return result


def main(argv: list[str] | None = None) -> int:
    """Fuzz every selected target and print the results table; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="per target (max 60)")
    parser.add_argument("--targets", default="", help="comma-separated names (default: all)")
    parser.add_argument("--findings", type=Path, default=ROOT / "runs" / "fuzz_findings")
    parser.add_argument("--worker", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    seconds = min(args.seconds, 60.0)
    args.findings.mkdir(parents=True, exist_ok=True)
    if args.worker:
        print(json.dumps(worker(args.worker, seconds, args.findings)))
        return 0

    from tests.robustness.fuzz_targets import TARGETS

    names = [n for n in args.targets.split(",") if n] or list(TARGETS)
    total = 0
    print("| target | examples | seconds | findings |")
    print("|---|---|---|---|")
    details = []
    for name in names:
        result = run_target(name, seconds, args.findings)
        findings = result["findings"]
        total += len(findings)
        print(f"| {name} | {result['examples']} | {result['wall']:.0f} | {len(findings)} |")
        details += [f"{name}: {key}: {f['message']} ({f['input']})" for key, f in findings.items()]
    for line in details:
        print("FINDING", line)
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
