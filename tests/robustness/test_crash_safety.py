"""Crash safety: SIGKILL a process that edits, saves, autosaves and exports, then check that
nothing committed is lost and nothing half-written is visible (see ``crash_harness``).

The fast version here kills 20 times; ``benchmarks/crash_safety.py`` runs the full 100.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest

from tests.robustness.crash_harness import ROOT, run_kills

KILLS = 20
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def test_random_sigkills_lose_no_committed_work(tmp_path: Path) -> None:
    results = run_kills(tmp_path, KILLS, seed=20, max_delay=0.3)
    problems = [f"kill {i}: {p}" for i, r in enumerate(results) for p in r.problems]
    assert problems == []
    # the kills must really land in different operations, and the work must really advance
    phases = Counter(r.phase for r in results)
    assert len(phases) >= 2, phases
    assert results[-1].project_edit is not None and results[-1].project_edit > 0
    assert any(r.davis_edit for r in results) and any(r.coco_edit for r in results)


_KILL_BETWEEN_RENAMES = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    import numpy as np
    from tracker_core.export import export_davis
    from tracker_core.labels import FrameLabels

    out = Path(sys.argv[1])
    frames = [(0, FrameLabels(np.ones((8, 8), np.uint8)))]
    export_davis(out, frames, 2, (8, 8), "clip")  # the previous, complete export
    import tracker_core.outputs as outputs
    real_exchange = outputs._exchange

    def exchange(a, b):  # killed right after the swap, before the old export is removed
        swapped = real_exchange(a, b)
        os.kill(os.getpid(), signal.SIGKILL)
        return swapped

    outputs._exchange = exchange
    export_davis(out, frames, 2, (8, 8), "clip")
    """
)


def test_kill_between_the_davis_swap_renames_keeps_an_export_visible(tmp_path: Path) -> None:
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", _KILL_BETWEEN_RENAMES, str(out)],
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == -9, done.stderr
    assert sorted(p.name for p in (out / "Annotations" / "clip").glob("*.png")) == [
        "00000.png",
        "00001.png",
    ]
