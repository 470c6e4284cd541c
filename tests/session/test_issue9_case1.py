"""Issue 9, found case 1, as the user met it: keypoints placed on frame 0 stopped at the bear's
mask keyframe on frame 20, frame 20 showed them "not placed", F from frame 19 said "Nothing to
propagate", and the COCO export had keypoints only for frames 0-19.

Written against the session/project API that existed before per-object provenance (no new names
imported), so it runs — and fails — on the code before the change too."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.session.conftest import ArrayVideo, FakePropagator, H, W, square_mask
from tracker_core import cli
from tracker_core.export import import_coco
from tracker_core.labels import FrameLabels
from tracker_core.project import Project
from tracker_core.session import Session

N25 = 25  # the case: keyframes on 0 and 20 of a longer clip
BEAR_20 = square_mask(20, y=10, size=6)


def points(x: float, y: float) -> np.ndarray:
    """Two keypoints ``(2, 3)`` float32, both placed and visible."""
    return np.array([[x, y, 1.0], [x + 4, y + 2, 1.0]], np.float32)


@pytest.fixture
def clip_session(tmp_path: Path) -> Iterator[tuple[Session, FakePropagator, int, int]]:
    """A 25-frame session with a mask object "bear" (keyframes on 0 and 20) and a keypoint
    object "animal" placed on frame 0 only — the state found in issue 9, case 1."""
    project = Project.new(tmp_path / "clip.avi", N25, H, W)
    fake = FakePropagator()
    frames = [np.full((H, W, 3), i, np.uint8) for i in range(N25)]
    session = Session(project, ArrayVideo(frames), propagator=fake)
    bear = session.add_object("bear").id
    animal = session.add_object("animal", kind="keypoints", keypoint_names=("nose", "tail")).id
    session.set_mask(0, square_mask(2))
    session.set_keypoint(0, animal, 0, 5.0, 7.0)
    session.set_keypoint(0, animal, 1, 9.0, 9.0)
    session.set_mask(20, BEAR_20)
    yield session, fake, bear, animal
    project.close()


def placed(labels: FrameLabels, object_id: int) -> bool:
    return bool(np.isfinite(labels.keypoints[object_id][:, 0]).all())


def test_keypoints_continue_past_the_bears_keyframe(clip_session, tmp_path: Path) -> None:
    session, _fake, _bear, animal = clip_session
    project = session.project
    job = session.propagation_job(0, "forward")
    assert job.ranges == [(0, N25)]
    assert job.run() == N25 - 1
    # the keypoints go on to the end; frame 20: the bear's painted pixels intact, the keypoints
    # propagated onto it; the bear itself was not propagated past its keyframe
    assert all(placed(project.labels(t), animal) for t in range(N25))
    at20 = project.labels(20)
    np.testing.assert_array_equal(at20.mask, BEAR_20)
    np.testing.assert_allclose(at20.keypoints[animal], points(5, 7))
    assert not project.labels(22).mask.any()
    # the COCO export has keypoints past frame 20
    project_file = session.project.save(tmp_path / "bear.trackpaint")
    out = tmp_path / "bear.json"
    assert cli.main(["-q", "export", str(project_file), "--format", "coco", "--out", str(out)]) == 0
    _objects, labels, _hw = import_coco(out)
    with_points = sorted(t for t, lab in labels.items() if placed(lab, animal))
    assert with_points == list(range(N25))
    document = json.loads(out.read_text())
    kp_images = {a["image_id"] for a in document["annotations"] if a.get("num_keypoints")}
    assert len(kp_images) == N25


def test_resuming_from_frame_19_is_not_nothing_to_propagate(clip_session) -> None:
    session, fake, _bear, animal = clip_session
    project = session.project
    job = session.propagation_job(0, "forward")
    for progress in job:
        if progress.frame == 19:
            job.cancel()
    assert not placed(project.labels(20), animal)
    job = session.propagation_job(19, "forward")  # F on frame 19: not "Nothing to propagate"
    assert job.total == 5
    job.run()
    assert fake.calls[-1][:2] == (19, N25)
    assert all(placed(project.labels(t), animal) for t in range(N25))
    np.testing.assert_array_equal(project.labels(20).mask, BEAR_20)
    assert project.sources()[21:].tolist() == [0] * 4  # resumed: still derived from frame 0
