"""Per-object keyframes and provenance: one object's keyframe never stops another object's
propagation and is never overwritten, editing one object stales only its frames, labels merge,
undo / save / reopen keep per-object states, and projects of the previous schema open without
loss. (The issue's found case 1 itself, in the previous API only: test_issue9_case1.py.)"""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from tests.session.conftest import ArrayVideo, FakePropagator, H, W, square_mask
from tests.session.test_issue9_case1 import BEAR_20, N25, clip_session, placed, points
from tracker_core.errors import ProjectError
from tracker_core.labels import FrameLabels, ObjectSpec
from tracker_core.project import (
    SCHEMA_VERSION,
    FrameState,
    ObjectProvenance,
    Project,
    encode_keypoints,
    encode_mask,
    objects_to_json,
)
from tracker_core.session import Session, merge_labels

__all__ = ["clip_session"]  # the fixture, defined with the issue's case

P, E, S, K = FrameState.PROPAGATED, FrameState.EMPTY, FrameState.STALE, FrameState.PAINTED


def test_nothing_to_propagate_only_when_no_object_can_move(clip_session) -> None:
    session, _fake, bear, animal = clip_session
    session.set_keypoint(20, animal, 0, 1.0, 1.0)  # now frame 20 is a keyframe of both
    session.set_mask(19, square_mask(3))
    session.set_keypoint(19, animal, 0, 2.0, 2.0)
    assert session.propagation_job(19, "forward").total == 0  # both stop at 20
    session.clear_frame(20)
    session.set_mask(20, BEAR_20)  # a keyframe of the bear only, again
    job = session.propagation_job(19, "forward")
    assert job.total == 5 and job.stops == [{bear: 20, animal: N25}]


def test_editing_one_object_stales_only_its_frames(clip_session) -> None:
    session, _fake, bear, animal = clip_session
    project = session.project
    session.propagation_job(0, "forward").run()
    session.set_keypoint(10, animal, 0, 6.0, 8.0)  # correct the keypoints on frame 10
    assert project.object_states(animal).tolist() == [K] + [P] * 9 + [K] + [S] * 14
    assert project.object_states(bear).tolist() == [K] + [P] * 19 + [K] + [E] * 4
    session.undo()
    assert project.object_states(animal).tolist() == [K] + [P] * (N25 - 1)
    session.paint_stroke(5, bear, [(3.0, 3.0)], 2)  # a bear correction
    assert project.object_states(bear)[4:21].tolist() == [P, K] + [S] * 14 + [K]
    assert project.object_states(animal).tolist() == [K] + [P] * (N25 - 1)


def test_a_propagated_mask_merges_under_another_objects_keyframe(tmp_path: Path) -> None:
    project = Project.new(tmp_path / "clip.avi", 6, H, W)
    fake = FakePropagator()
    frames = [np.zeros((H, W, 3), np.uint8)] * 6
    session = Session(project, ArrayVideo(frames), propagator=fake)
    a = session.add_object("a").id
    b = session.add_object("b").id
    start = square_mask(2, object_id=a)
    start[0:8, 14:24] = b
    session.set_mask(0, start)
    painted = np.zeros((H, W), np.uint8)
    painted[0:4, 10:20] = a  # frame 3: a keyframe of "a" that covers part of "b"
    session.set_mask(3, painted, objects=[a])
    assert project.provenance(3)[b].state == E
    session.propagation_job(0, "forward").run()
    assert project.object_states(a).tolist() == [K, P, P, K, E, E]
    assert project.object_states(b).tolist() == [K, P, P, P, P, P]
    merged = project.labels(3).mask
    np.testing.assert_array_equal(merged == a, painted == a)  # a's painted pixels intact
    expect_b = (start == b) & (painted != a)
    np.testing.assert_array_equal(merged == b, expect_b)  # b fills in around them
    # the references of the run: frame 3 is not one (b has no labels there)
    assert fake.calls[-1][2] == [0]
    project.close()


def test_merge_labels_rule() -> None:
    current = FrameLabels(
        np.array([[1, 1, 2, 0]], np.uint8), {7: np.array([[1, 1, 1]], np.float32)}
    )
    result = FrameLabels(np.array([[2, 2, 0, 2]], np.uint8), {7: np.array([[5, 5, 1]], np.float32)})
    out = merge_labels(current, result, {2})
    assert out.mask.tolist() == [[1, 1, 0, 2]]  # 1 kept, 2's old pixel cleared, free one taken
    np.testing.assert_array_equal(out.keypoints[7], [[1, 1, 1]])  # 7 not written: kept
    out = merge_labels(current, result, {2, 7})
    np.testing.assert_array_equal(out.keypoints[7], [[5, 5, 1]])


def test_per_object_state_round_trips_and_undo(clip_session, tmp_path: Path) -> None:
    session, _fake, bear, animal = clip_session
    project = session.project
    session.propagation_job(0, "forward").run()
    expected = {o: project.object_states(o) for o in (bear, animal)}
    conf = project.object_confidences(animal)
    session.save(tmp_path / "p.trackpaint")
    with Project.open(tmp_path / "p.trackpaint") as back:
        for o in (bear, animal):
            np.testing.assert_array_equal(back.object_states(o), expected[o])
        np.testing.assert_array_equal(back.object_confidences(animal), conf)
        np.testing.assert_array_equal(back.states(), project.states())
    session.undo()  # the run
    assert project.object_states(animal).tolist() == [K] + [E] * (N25 - 1)
    assert project.object_states(bear).tolist() == [K] + [E] * 19 + [K] + [E] * 4
    session.redo()
    np.testing.assert_array_equal(project.object_states(animal), expected[animal])
    session.remove_object(animal)  # drops its provenance; undo brings it back
    assert all(animal not in project.provenance(t) for t in range(N25))
    assert project.states()[21:].tolist() == [P] * 4  # a frame's summary is kept (as before)
    session.undo()
    np.testing.assert_array_equal(project.object_states(animal), expected[animal])
    assert project.states()[21:].tolist() == [P] * 4


def test_make_keyframe_and_clear_are_per_object_aware(clip_session) -> None:
    session, _fake, bear, animal = clip_session
    project = session.project
    session.propagation_job(0, "forward").run()
    assert session.make_keyframe(22, animal)
    assert project.provenance(22)[animal].state == K and project.provenance(22)[bear].state == E
    assert not session.make_keyframe(22, animal)  # nothing propagated left for it there
    assert session.make_keyframe(5)  # every propagated object
    assert all(p.state == K for p in project.provenance(5).values())
    session.clear_frame(5)
    assert all(p.state == E for p in project.provenance(5).values())
    assert (project.object_states(bear)[6:20] == S).all()
    assert (project.object_states(animal)[6:22] == S).all()


# ---- the previous schema ------------------------------------------------------------------

OLD_SCHEMA = (  # schema 1 exactly as Trackpaint wrote it before per-object provenance
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE frames ("
    " idx INTEGER PRIMARY KEY, state INTEGER NOT NULL, confidence REAL, source INTEGER,"
    " ids TEXT NOT NULL DEFAULT '[]', keypoints TEXT, mask BLOB)",
)


def write_schema_1(path: Path, video: Path) -> dict[int, tuple]:
    """The issue's project as the previous Trackpaint saved it: bear + keypoints on frame 0,
    propagated 1-19 (confidence 1 - t/100), frame 20 painted for the bear only, 21-24 stale
    propagated bear (from 0), plus frame 23 painted with nothing (a deliberate empty keyframe).
    Returns ``{frame: (state, confidence, source, mask, keypoints)}`` as written."""
    bear = ObjectSpec(1, "bear", (200, 10, 10))
    animal = ObjectSpec(2, "animal", (0, 0, 255), "keypoints", ("nose", "tail"))
    rows: dict[int, tuple] = {0: (K, None, None, square_mask(2), {2: points(5, 7)})}
    for t in range(1, 20):
        rows[t] = (P, 1 - t / 100, 0, square_mask(2), {2: points(5, 7)})
    rows[20] = (K, None, None, BEAR_20, {})
    for t in (21, 22, 24):
        rows[t] = (S, 0.5, 0, square_mask(2), {})
    rows[23] = (K, None, None, np.zeros((H, W), np.uint8), {})
    db = sqlite3.connect(path)
    for sql in OLD_SCHEMA:
        db.execute(sql)
    meta = {
        "format": "trackpaint-project",
        "schema_version": "1",
        "video_path": video.name,
        "num_frames": str(N25),
        "height": str(H),
        "width": str(W),
        "objects": objects_to_json((bear, animal)),
    }
    db.executemany("INSERT INTO meta VALUES (?, ?)", list(meta.items()))
    for t, (state, conf, src, mask, kps) in rows.items():
        ids = sorted(int(i) for i in np.unique(mask) if i)
        db.execute(
            "INSERT INTO frames VALUES (?, ?, ?, ?, ?, ?, ?)",
            (t, int(state), conf, src, json.dumps(ids), encode_keypoints(kps), encode_mask(mask)),
        )
    db.commit()
    db.close()
    return rows


def test_a_schema_1_project_opens_without_loss(tmp_path: Path) -> None:
    path = tmp_path / "old.trackpaint"
    rows = write_schema_1(path, tmp_path / "clip.avi")
    assert SCHEMA_VERSION == 2
    with Project.open(path) as project:
        assert not project.modified
        for t in range(N25):
            state, conf, src, mask, kps = rows.get(t, (E, None, None, np.zeros((H, W)), {}))
            assert project.state(t) == state
            got = project.confidences()[t]
            assert (math.isnan(got) and conf is None) or got == pytest.approx(conf)
            assert project.source(t) == src
            labels = project.labels(t)
            np.testing.assert_array_equal(labels.mask, mask)
            if 2 in kps:
                np.testing.assert_array_equal(labels.keypoints[2], kps[2])
            else:
                assert np.isnan(labels.keypoints[2][:, 0]).all()
        bear, animal = project.object_states(1), project.object_states(2)
        assert bear.tolist() == [K] + [P] * 19 + [K, S, S, K, S]
        # 21-24 were propagated from 0, where the animal had labels: stale for it too
        assert animal.tolist() == [K] + [P] * 19 + [E, S, S, K, S]
        assert project.provenance(7)[2] == ObjectProvenance(P, pytest.approx(0.93), 0)
        # saved again it is a schema-2 file; reopened, nothing changed
        project.save(tmp_path / "new.trackpaint")
    db = sqlite3.connect(tmp_path / "new.trackpaint")
    version = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0]
    db.close()
    assert version == str(SCHEMA_VERSION)
    with Project.open(tmp_path / "new.trackpaint") as again:
        np.testing.assert_array_equal(again.object_states(2), animal)
        np.testing.assert_array_equal(again.labels(20).mask, BEAR_20)
    assert Path(path).read_bytes()[:16] == b"SQLite format 3\x00"  # the old file is untouched
    db = sqlite3.connect(path)
    assert db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == "1"
    db.close()


def test_the_migrated_issue_project_propagates_past_frame_20(tmp_path: Path) -> None:
    path = tmp_path / "old.trackpaint"
    write_schema_1(path, tmp_path / "clip.avi")
    with Project.open(path) as project:
        frames = [np.zeros((H, W, 3), np.uint8)] * N25
        session = Session(project, ArrayVideo(frames), propagator=FakePropagator())
        job = session.propagation_job(19, "forward")  # F on frame 19 (was "Nothing to propagate")
        assert job.stops == [{1: 20, 2: 23}]  # 23: the empty keyframe is one of both objects
        job.run()
        assert project.object_states(2)[20:].tolist() == [P, P, P, K, S]
        np.testing.assert_array_equal(project.labels(20).mask, BEAR_20)
        assert placed(project.labels(22), 2)


def test_set_mask_makes_keyframes_of_the_objects_it_changes(tmp_path: Path) -> None:
    project = Project.new(tmp_path / "clip.avi", 6, H, W)
    session = Session(
        project,
        ArrayVideo([np.zeros((H, W, 3), np.uint8)] * 6),
        propagator=FakePropagator(),
    )
    a, b = session.add_object("a").id, session.add_object("b").id
    start = square_mask(2, object_id=a)
    start[0:6, 20:26] = b
    session.set_mask(0, start)
    session.propagation_job(0, "forward").run()
    moved = start.copy()
    moved[moved == a] = 0
    moved[10:16, 2:8] = a  # only a changes on frame 3
    session.set_mask(3, moved)
    assert project.provenance(3)[a].state == K and project.provenance(3)[b].state == P
    assert project.object_states(a)[4:].tolist() == [S, S]
    assert project.object_states(b)[4:].tolist() == [P, P]
    # painting a over b's propagated pixels changes b too: b's later frames go stale
    session.paint_stroke(3, a, [(22.0, 2.0)], 2)
    assert project.provenance(3)[b].state == P  # its state on frame 3 stays
    assert project.object_states(b)[4:].tolist() == [S, S]
    project.close()


def test_a_damaged_schema_1_project_is_named_not_crashed(tmp_path: Path) -> None:
    path = tmp_path / "old.trackpaint"
    write_schema_1(path, tmp_path / "clip.avi")
    db = sqlite3.connect(path)
    db.execute("UPDATE frames SET keypoints='{\"2\": [[1, 2]]}' WHERE idx=3")  # not (P, 3)
    db.commit()
    db.close()
    with pytest.raises(ProjectError, match="frame 3 has malformed keypoints") as info:
        Project.open(path)
    assert str(path) in str(info.value)
    db = sqlite3.connect(path)
    db.execute("UPDATE frames SET keypoints=NULL WHERE idx=3")
    db.execute("CREATE TABLE object_frames (x)")  # a schema-1 file cannot have one
    db.commit()
    db.close()
    with pytest.raises(ProjectError, match="schema-1"):
        Project.open(path)
