"""Resume after ``kill -9``: a batch killed once its first item is complete re-runs only the
items that were not, and every output ends complete."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.batch.conftest import FAST, make_clip, manifest_for, project_masks
from tracker_core.batch import STATE_NAME, STATUS_DONE, STATUS_SKIPPED, SUMMARY_NAME
from tracker_core.project import FrameState

REPO = Path(__file__).resolve().parents[2]


def test_a_killed_batch_resumes_with_the_unfinished_items(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    # the first item is short; the second long enough (~1-2 s) that the kill lands inside it
    clips = [make_clip(data, "first", 6, 0), make_clip(data, "long", 150, 1)]
    clips.append(make_clip(data, "last", 6, 2))
    manifest = manifest_for(clips, tmp_path / "manifest.csv")
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "tracker_core.cli", "-q", "batch", str(manifest)]
    argv += ["--out", str(out), "--workers", "1", *FAST]
    proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not (out / "first" / STATE_NAME).exists():
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "the first item never completed"
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
        if proc.stderr:
            proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "long" / "long.trackpaint").exists()  # no half-written project
    assert not (out / "last" / STATE_NAME).exists()

    rerun = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    summary = json.loads((out / SUMMARY_NAME).read_text())
    statuses = {item["name"]: item["status"] for item in summary["items"]}
    assert statuses == {"first": STATUS_SKIPPED, "long": STATUS_DONE, "last": STATUS_DONE}
    for clip in clips:
        masks, states, _ = project_masks(out / clip.name / f"{clip.name}.trackpaint")
        assert masks.shape[0] == clip.frames
        assert states[0] == FrameState.PAINTED and (states[1:] == FrameState.PROPAGATED).all()
    leftovers = [p.name for p in out.rglob(".*") if p.name != STATE_NAME]
    assert leftovers == [], leftovers  # the dead run's staging files were cleaned up
