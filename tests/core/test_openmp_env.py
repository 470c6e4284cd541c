"""Importing tracker_core sets libgomp's spin count before torch loads, unless the user did."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CODE = "import os, tracker_core, torch; print(os.environ.get('GOMP_SPINCOUNT'))"


def run(env_value: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "GOMP_SPINCOUNT"}
    if env_value is not None:
        env["GOMP_SPINCOUNT"] = env_value
    out = subprocess.run(
        [sys.executable, "-c", CODE], env=env, capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def test_spin_count_is_capped_by_default() -> None:
    import tracker_core

    assert run(None) == tracker_core.SPIN_COUNT == "20000"


def test_a_users_spin_count_is_kept() -> None:
    assert run("300000") == "300000"


def first_import_line(lines: list[str], names: tuple[str, ...]) -> int | None:
    """Index of the first line importing one of ``names`` (``import x`` / ``from x...``)."""
    for i, line in enumerate(lines):
        words = line.split()
        if len(words) >= 2 and words[0] in ("import", "from"):
            if words[1].split(".")[0] in names:
                return i
    return None


def test_every_benchmark_and_entry_point_loads_tracker_core_before_torch() -> None:
    """A script that imports torch first runs libgomp's own 300,000-round spin, so it would time
    a different program from the app and the CLI (the GUI benchmark did until session 7)."""
    root = Path(__file__).resolve().parents[2]
    scripts = [p for d in ("benchmarks", "app", "scripts") for p in sorted((root / d).glob("*.py"))]
    late = []
    for path in scripts:
        lines = path.read_text().splitlines()
        torch_at = first_import_line(lines, ("torch",))
        core_at = first_import_line(lines, ("tracker_core",))
        if torch_at is not None and (core_at is None or core_at > torch_at):
            late.append(path.name)
    assert len(scripts) > 10
    assert late == []
