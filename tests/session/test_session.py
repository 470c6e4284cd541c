"""Session commands: strokes, fills, keypoints, objects, undo/redo, stale marking, events."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.session.conftest import ArrayVideo, H, N, W, square_mask
from tracker_core.errors import MaskError
from tracker_core.labels import FrameLabels
from tracker_core.project import FrameState, Project
from tracker_core.session import (
    ChangeEvent,
    HistoryLimits,
    Session,
    brush_footprint,
    frames_made_stale,
    next_uncertain,
    paint_footprint,
    propagation_stop,
)

P, E, S, K = FrameState.PROPAGATED, FrameState.EMPTY, FrameState.STALE, FrameState.PAINTED


def recorder(session: Session) -> list[ChangeEvent]:
    events: list[ChangeEvent] = []
    session.subscribe(events.append)
    return events


def set_propagated(project: Project, frames: range, source: int, conf: float = 0.9) -> None:
    for t in frames:
        project.set_frame(
            t, FrameLabels(square_mask(t)), FrameState.PROPAGATED, confidence=conf, source=source
        )


# ---- strokes -----------------------------------------------------------------------------


def test_a_stroke_is_one_undo_step_and_previews_before_commit(session: Session) -> None:
    events = recorder(session)
    session.begin_stroke(3, 1, radius=2)
    for x in range(4, 20, 2):
        session.stroke_to(x, 10)
    preview = session.labels(3).mask.copy()
    assert preview[10, 4:20].all() and preview[10, 22] == 0
    assert not session.labels(3).mask.flags.writeable
    assert session.project.state(3) == FrameState.EMPTY  # nothing committed yet
    assert not session.project.labels(3).mask.any()
    assert all(e.kind == "stroke" and e.frames == (3,) for e in events)

    assert session.end_stroke()
    assert session.project.state(3) == FrameState.PAINTED
    np.testing.assert_array_equal(session.project.labels(3).mask, preview)
    assert events[-1] == ChangeEvent("edit", frames=(3,))
    assert session.undo_label == "Paint"

    assert session.undo()
    assert session.project.state(3) == FrameState.EMPTY and not session.labels(3).mask.any()
    assert session.undo()  # the "add object" step
    assert not session.can_undo
    assert session.redo() and session.redo()
    np.testing.assert_array_equal(session.project.labels(3).mask, preview)
    assert not session.can_redo


def test_brush_is_round_and_covers_the_segment() -> None:
    def full(p0: tuple[float, float], p1: tuple[float, float], r: float) -> np.ndarray:
        out = np.zeros((H, W), np.uint8)
        window, foot = brush_footprint((H, W), p0, p1, r)
        paint_footprint(out, window, foot, 1, erase=False)
        return out.astype(bool)

    dot = full((10, 10), (10, 10), 3)
    assert dot[10, 7:14].all() and dot[7:14, 10].all() and not dot[7, 7]
    assert dot.sum() < 40 and not dot[10, 14] and not dot[10, 6]
    seg = full((4, 5), (25, 5), 1.5)
    assert seg[5, 4:26].all() and not seg[9, 15] and not seg[5, 28]
    edge = full((-3, 20), (1, 20), 4)  # partly outside the frame: clipped, no error
    assert edge[16:24, 0].all() and not edge[:16].any() and not edge[:, 6:].any()
    assert not full((-50, -50), (-40, -40), 3).any()


def test_erase_clears_only_the_selected_object(session: Session) -> None:
    dog = session.add_object("dog").id
    mask = square_mask(2)
    mask[6:14, 10:18] = dog
    session.set_mask(0, mask)
    session.paint_stroke(0, 1, [(0, 10), (20, 10)], 2, erase=True)
    out = session.project.labels(0).mask
    assert not (out[8:13, 2:10] == 1).any()  # car erased under the brush
    assert (out[6:14, 10:18] == dog).all()  # dog untouched


def test_stroke_errors_and_cancel(session: Session) -> None:
    with pytest.raises(RuntimeError):
        session.stroke_to(1, 1)
    with pytest.raises(ValueError, match="radius"):
        session.begin_stroke(0, 1, 0)
    session.begin_stroke(0, 1, 2)
    with pytest.raises(RuntimeError, match="already"):
        session.begin_stroke(1, 1, 2)
    session.stroke_to(5, 5)
    session.cancel_stroke()
    assert not session.stroke_active and not session.labels(0).mask.any()
    assert session.undo_label == "Add car"


def test_removing_the_stroke_object_cancels_the_stroke(session: Session) -> None:
    session.begin_stroke(0, 1, 2)
    session.stroke_to(4, 4)
    session.remove_object(1)
    assert not session.stroke_active and session.project.state(0) == FrameState.EMPTY
    with pytest.raises(RuntimeError):
        session.end_stroke()


def test_noop_edits_record_nothing(session: Session) -> None:
    session.paint_stroke(0, 1, [(5, 5)], 2, erase=True)  # erasing nothing
    assert session.project.state(0) == FrameState.EMPTY and session.undo_label == "Add car"


def test_fill_polygon_and_fill_holes(session: Session) -> None:
    assert session.fill_polygon(2, 1, [(2, 2), (20, 2), (20, 15), (2, 15)])
    ring = session.project.labels(2).mask.copy()
    assert ring[2:16, 2:21].all() and ring.sum() == 14 * 19
    session.fill_polygon(2, 1, [(6, 6), (12, 6), (12, 11), (6, 11)], erase=True)
    assert (session.project.labels(2).mask[6:12, 6:13] == 0).all()
    assert session.fill_holes(2, 1)
    np.testing.assert_array_equal(session.project.labels(2).mask, ring)
    assert not session.fill_holes(2, 1)  # no holes left: no-op
    session.undo()
    assert (session.project.labels(2).mask[6:12, 6:13] == 0).all()


def test_fill_holes_keeps_other_objects(session: Session) -> None:
    dog = session.add_object("dog").id
    mask = np.zeros((H, W), np.uint8)
    mask[2:16, 2:16] = 1
    mask[5:12, 5:12] = 0
    mask[7:9, 7:9] = dog
    session.set_mask(0, mask)
    session.fill_holes(0, 1)
    out = session.project.labels(0).mask
    assert (out[7:9, 7:9] == dog).all() and (out[5:7, 5:12] == 1).all()


def test_set_mask_validates(session: Session) -> None:
    with pytest.raises(MaskError, match="size"):
        session.set_mask(0, np.zeros((H + 1, W), np.uint8))
    with pytest.raises(MaskError, match=r"\[9\]"):
        session.set_mask(0, square_mask(2, object_id=9))
    assert session.undo_label == "Add car"


def test_keypoint_edits(session: Session) -> None:
    person = session.add_object("person", kind="keypoints", keypoint_names=("a", "b")).id
    with pytest.raises(ValueError, match="not a keypoint object"):
        session.set_keypoint(0, 1, 0, 1, 1)
    with pytest.raises(IndexError):
        session.set_keypoint(0, person, 2, 1, 1)
    with pytest.raises(MaskError, match="not placed"):
        session.set_keypoint_visibility(0, person, 0, False)
    session.set_keypoint(0, person, 1, 4.5, 6.25)
    session.set_keypoint_visibility(0, person, 1, False)
    np.testing.assert_array_equal(session.labels(0).keypoints[person][1], [4.5, 6.25, 0.0])
    assert np.isnan(session.labels(0).keypoints[person][0, :2]).all()
    session.delete_keypoint(0, person, 1)
    assert np.isnan(session.labels(0).keypoints[person][:, :2]).all()
    assert session.project.state(0) == FrameState.PAINTED
    session.undo()
    session.undo()
    np.testing.assert_array_equal(session.labels(0).keypoints[person][1], [4.5, 6.25, 1.0])
    with pytest.raises(ValueError, match="finite"):
        session.set_keypoint(0, person, 0, math.nan, 1)


def test_clear_and_make_keyframe(session: Session) -> None:
    project = session.project
    session.set_mask(0, square_mask(0))
    set_propagated(project, range(1, 5), source=0)
    assert session.make_keyframe(2)
    assert project.state(2) == FrameState.PAINTED and math.isnan(project.confidences()[2])
    assert not session.make_keyframe(2)
    assert session.clear_frame(0)
    assert project.state(0) == FrameState.EMPTY
    assert project.states()[1].item() == FrameState.STALE  # it came from the cleared keyframe
    session.undo()
    assert project.state(0) == FrameState.PAINTED and project.state(1) == FrameState.PROPAGATED
    session.undo()
    assert project.state(2) == FrameState.PROPAGATED and project.confidences()[2] == 0.9


# ---- objects -----------------------------------------------------------------------------


def test_object_edits_are_undoable(session: Session) -> None:
    project = session.project
    events = recorder(session)
    dog = session.add_object("dog", color=(1, 2, 3))
    assert dog.id == 2 and project.object(2).color == (1, 2, 3)
    assert project.object(1).color == (128, 0, 0)  # DAVIS palette default
    session.rename_object(2, "hound")
    session.recolor_object(2, (9, 9, 9))
    assert events[-1].objects_changed and events[-1].kind == "objects"
    mask = square_mask(2)
    mask[0:2, 0:2] = 2
    session.set_mask(4, mask)
    session.set_object_hidden(2, True)
    session.remove_object(2)
    assert project.objects == (project.object(1),)
    assert not (project.labels(4).mask == 2).any() and session.hidden_objects == frozenset()

    session.undo()  # remove
    assert project.object(2).name == "hound" and (project.labels(4).mask == 2).sum() == 4
    session.undo()  # set_mask
    session.undo()  # recolour
    assert project.object(2).color == (1, 2, 3)
    session.undo()  # rename
    assert project.object(2).name == "dog"
    session.undo()  # add
    with pytest.raises(KeyError):
        project.object(2)
    for _ in range(5):
        session.redo()
    assert [o.id for o in project.objects] == [1]
    assert (project.labels(4).mask == 1).sum() == 64


def test_hidden_is_view_state(session: Session) -> None:
    events = recorder(session)
    session.set_object_hidden(1, True)
    session.set_object_hidden(1, True)
    assert session.hidden_objects == {1}
    assert events == [ChangeEvent("view", view_changed=True, history_changed=False)]
    assert session.undo_label == "Add car"  # not an undo step
    with pytest.raises(KeyError):
        session.set_object_hidden(7, True)


def test_unsubscribe(session: Session) -> None:
    events: list[ChangeEvent] = []
    unsubscribe = session.subscribe(events.append)
    session.set_mask(0, square_mask(1))
    unsubscribe()
    session.set_mask(0, square_mask(2))
    assert len(events) == 1


# ---- provenance ---------------------------------------------------------------------------


def test_frames_made_stale_rule() -> None:
    #        0  1  2  3  4  5  6  7  8  9
    states = np.array([K, P, P, P, K, P, P, P, P, E], np.uint8)
    sources = np.array([-1, 0, 0, 4, -1, 4, 4, 4, 4, -1])  # 1-2 forward from 0, 3 back from 4
    assert frames_made_stale(states, sources, 0).tolist() == [1, 2]
    assert frames_made_stale(states, sources, 4).tolist() == [3, 5, 6, 7, 8]
    assert frames_made_stale(states, sources, 6).tolist() == [7, 8]
    assert frames_made_stale(states, sources, 1).tolist() == [2]
    assert frames_made_stale(states, sources, 3).tolist() == []  # backward run stops at 3
    assert frames_made_stale(states, sources, 9).tolist() == []


def test_edit_marks_only_frames_propagated_through_it(session: Session) -> None:
    project = session.project
    session.set_mask(0, square_mask(0))
    session.set_mask(6, square_mask(6))
    set_propagated(project, range(1, 6), source=0)
    set_propagated(project, range(7, N), source=6)
    events = recorder(session)
    session.paint_stroke(3, 1, [(20, 20)], 2)
    expect = [K, P, P, K, S, S, K] + [P] * (N - 7)
    assert project.states().tolist() == expect
    assert events[-1].frames == (3, 4, 5)
    session.undo()
    assert project.states().tolist() == [K, P, P, P, P, P, K] + [P] * (N - 7)
    assert project.labels(3).mask[6, 3] == 1  # the propagated labels are back
    session.redo()
    assert project.states().tolist() == expect


def test_backward_propagated_frames_go_stale(session: Session) -> None:
    project = session.project
    session.set_mask(8, square_mask(8))
    set_propagated(project, range(3, 8), source=8)  # propagated backward from 8
    session.paint_stroke(5, 1, [(1, 1)], 1)
    assert project.states()[3:9].tolist() == [S, S, K, P, P, K]


# ---- history bounds and queries -----------------------------------------------------------


def test_history_is_bounded_by_steps(project: Project) -> None:
    session = Session(project, history=HistoryLimits(max_steps=3))
    session.add_object("car")
    for t in range(6):
        session.set_mask(t, square_mask(t))
    assert sum(session.undo() for _ in range(10)) == 3
    assert project.keyframes() == [0, 1, 2]


def test_history_is_bounded_by_bytes(project: Project) -> None:
    session = Session(project, history=HistoryLimits(max_bytes=2000))
    session.add_object("car")
    noise = np.random.default_rng(0).integers(0, 2, (H, W), dtype=np.uint8)
    for t in range(8):
        session.set_mask(t, noise)
        session.set_mask(t, 1 - noise)  # the step holds the previous noisy PNG
    assert 0 < session.history_bytes <= 2000
    undone = sum(session.undo() for _ in range(20))
    assert 1 <= undone < 16


def test_next_uncertain_frame(session: Session) -> None:
    project = session.project
    session.set_mask(0, square_mask(0))
    set_propagated(project, range(1, 4), source=0, conf=0.9)
    set_propagated(project, range(4, 6), source=0, conf=0.2)
    set_propagated(project, range(6, 8), source=0, conf=0.9)
    project.set_frame(9, FrameLabels(square_mask(1)), FrameState.STALE, confidence=0.1, source=0)
    assert session.next_uncertain_frame(0) == 4
    assert session.next_uncertain_frame(4) == 5
    assert session.next_uncertain_frame(5) is None
    assert session.next_uncertain_frame(0, threshold=0.95) == 1


def test_pure_queries() -> None:
    states = np.array([K, P, P, K, P], np.uint8)
    conf = np.array([np.nan, 0.8, 0.3, np.nan, 0.1], np.float32)
    assert next_uncertain(states, conf, -1, 0.5) == 2
    assert propagation_stop([0, 3], 0, 1, 5) == 3
    assert propagation_stop([0, 3], 3, 1, 5) == 5
    assert propagation_stop([0, 3], 3, -1, 5) == 0
    assert propagation_stop([3], 3, -1, 5) == -1


def test_session_rejects_a_video_of_another_length(project: Project) -> None:
    with pytest.raises(ValueError, match="frames"):
        Session(project, ArrayVideo([np.zeros((H, W, 3), np.uint8)]))
