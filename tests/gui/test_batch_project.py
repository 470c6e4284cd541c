"""A project written by `trackpaint batch` opens in the real main window with the keyframe and
the propagated frames on the timeline and their confidence on the plot."""

from __future__ import annotations

import numpy as np

from tests.batch.conftest import FAST, make_clip, manifest_for
from tracker_core.cli import main
from tracker_core.project import FrameState


def test_batch_project_opens_with_keyframe_propagated_frames_and_confidence(make_window, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    clip = make_clip(data, "clip", 8, 0)
    manifest = manifest_for([clip], tmp_path / "manifest.csv")
    out = tmp_path / "out"
    assert main(["-q", "batch", str(manifest), "--out", str(out), *FAST]) == 0

    window = make_window()
    assert window.open_path(out / "clip" / "clip.trackpaint")
    project = window.doc.project
    assert project.num_frames == 8
    window.timeline.refresh()
    states = window.timeline.strip.states()
    assert states[0] == FrameState.PAINTED
    assert (states[1:] == FrameState.PROPAGATED).all()
    _x, y = window.timeline.plot.curve_data()
    assert np.isnan(y[0]) and np.isfinite(y[1:]).all()
    np.testing.assert_allclose(y, project.confidences(), rtol=1e-6)
    assert (project.labels(5).mask > 0).any()
    assert not project.modified
