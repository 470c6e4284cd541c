"""Propagation jobs: ranges, keyframe safety, cancel, undo, resume, threads, the real propagator."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from tests.fixtures_video import make_moving_square_frames, write_frame_folder
from tests.session.conftest import ArrayVideo, FakePropagator, H, N, W, square_mask
from tracker_core.encoder import LabEncoder
from tracker_core.project import FrameState, Project
from tracker_core.session import ChangeEvent, HistoryLimits, PropagationProgress, Session
from tracker_core.video import VideoSource

P, E, S, K = FrameState.PROPAGATED, FrameState.EMPTY, FrameState.STALE, FrameState.PAINTED


def test_forward_run_stops_before_the_next_keyframe(session: Session, fake: FakePropagator) -> None:
    project = session.project
    session.set_mask(2, square_mask(2))
    session.set_mask(7, square_mask(7))
    job = session.propagation_job(2, "forward")
    assert job.total == 4 and job.ranges == [(2, 7)]
    progress = list(job)
    assert [p.frame for p in progress] == [3, 4, 5, 6]
    assert progress[-1] == PropagationProgress(
        4, 4, 6, pytest.approx(0.6), progress[-1].ms_per_frame, "forward"
    )
    assert fake.calls[0][:3] == (2, 7, [2, 7])  # all keyframes are references
    assert project.states().tolist() == [E, E, K, P, P, P, P, K, E, E, E, E]
    assert project.sources()[3:7].tolist() == [2, 2, 2, 2]
    np.testing.assert_allclose(project.confidences()[3:7], [0.9, 0.8, 0.7, 0.6])
    np.testing.assert_array_equal(project.labels(6).mask, square_mask(2))
    np.testing.assert_array_equal(project.labels(7).mask, square_mask(7))  # keyframe intact
    assert session.last_ms_per_frame is not None and job.finished


def test_backward_and_both(session: Session, fake: FakePropagator) -> None:
    project = session.project
    session.set_mask(1, square_mask(1))
    session.set_mask(5, square_mask(5))
    session.propagation_job(5, "backward").run()
    assert fake.calls[-1][:2] == (5, 1)
    assert project.states()[:6].tolist() == [E, K, P, P, P, K]
    job = session.propagation_job(1, "both")
    assert job.ranges == [(1, 5), (1, -1)] and job.total == 4
    directions = [p.direction for p in job]
    assert directions == ["forward"] * 3 + ["backward"]
    assert project.states()[:6].tolist() == [P, K, P, P, P, K]
    assert project.sources()[:6].tolist() == [1, -1, 1, 1, 1, -1]
    session.undo()  # the whole "both" run is one step
    assert project.states()[:6].tolist() == [E, K, P, P, P, K]
    assert project.sources()[2:5].tolist() == [5, 5, 5]


def test_whole_run_is_one_undo_step(session: Session) -> None:
    project = session.project
    session.set_mask(0, square_mask(0))
    session.propagation_job(0, "forward").run()
    assert (project.states()[1:] == P).all()
    assert session.undo_label == "Propagate from frame 0"
    session.undo()
    assert project.states().tolist() == [K] + [E] * (N - 1)
    assert np.isnan(project.confidences()).all()
    session.redo()
    assert (project.states()[1:] == P).all()
    np.testing.assert_allclose(project.confidences()[5], 0.5)


def test_cancel_keeps_what_is_done(session: Session, fake: FakePropagator) -> None:
    project = session.project
    session.set_mask(0, square_mask(0))
    job = session.propagation_job(0, "forward")
    for progress in job:
        if progress.done == 3:
            job.cancel()
    assert job.done == 3 and job.cancelled and job.finished
    assert fake.computed == [1, 2, 3]  # nothing computed after the cancel
    assert project.states()[:5].tolist() == [K, P, P, P, E]
    assert session.can_undo
    session.undo()
    assert project.states()[:5].tolist() == [K, E, E, E, E]


def test_closing_the_generator_keeps_what_is_done(session: Session) -> None:
    project = session.project
    session.set_mask(0, square_mask(0))
    job = session.propagation_job(0, "forward")
    next(job)
    next(job)
    assert not session.can_undo  # the run is still open
    assert session.undo() is False
    job.close()
    assert project.states()[:4].tolist() == [K, P, P, E]
    assert session.can_undo and session.undo_label == "Propagate from frame 0"
    session.undo()
    assert project.keyframes() == [0] and (project.states()[1:] == E).all()


def test_never_overwrites_a_frame_painted_while_running(session: Session) -> None:
    project = session.project
    session.set_mask(0, square_mask(0))
    job = session.propagation_job(0, "forward")
    assert job.total == N - 1
    next(job)
    session.set_mask(4, square_mask(20))  # the user paints ahead of the job
    rest = [p.frame for p in job]
    assert rest == [2, 3]
    assert project.states()[:6].tolist() == [K, P, P, P, K, E]
    np.testing.assert_array_equal(project.labels(4).mask, square_mask(20))


def test_edit_behind_a_running_job_makes_its_later_output_stale(session: Session) -> None:
    project = session.project
    session.set_mask(0, square_mask(0))
    job = session.propagation_job(0, "forward")
    for progress in job:
        if progress.frame == 3:
            session.paint_stroke(2, 1, [(25, 20)], 2)
        if progress.frame == 5:
            job.cancel()
    assert project.states()[:7].tolist() == [K, P, K, S, S, S, E]
    session.undo()  # the edit (recorded after the run's step, which opened at frame 1)
    assert project.states()[:7].tolist() == [K, P, P, P, S, S, E]
    session.undo()  # the run
    assert project.states()[:7].tolist() == [K] + [E] * 6


def test_rerun_over_propagated_frames_and_resume_after_correction(
    session: Session, fake: FakePropagator
) -> None:
    project = session.project
    session.set_mask(0, square_mask(0))
    session.propagation_job(0, "forward").run()
    corrected = square_mask(12)
    session.set_mask(5, corrected)
    assert project.states().tolist() == [K, P, P, P, P, K] + [S] * (N - 6)
    session.propagation_job(5, "forward").run()
    start, stop, refs, start_labels = fake.calls[-1]
    assert (start, stop, refs) == (5, N, [0, 5])
    np.testing.assert_array_equal(start_labels.mask, corrected)
    assert project.states().tolist() == [K, P, P, P, P, K] + [P] * (N - 6)
    np.testing.assert_array_equal(project.labels(N - 1).mask, corrected)
    assert (project.sources()[6:] == 5).all()
    session.undo()  # back to the stale output of the first run
    assert (project.states()[6:] == S).all()
    np.testing.assert_array_equal(project.labels(N - 1).mask, square_mask(0))


def test_resume_from_a_propagated_frame_keeps_the_origin(session: Session) -> None:
    project = session.project
    session.set_mask(0, square_mask(0))
    job = session.propagation_job(0, "forward")
    for progress in job:
        if progress.frame == 4:
            job.cancel()
    session.propagation_job(4, "forward").run()  # continue where it stopped
    assert (project.states()[1:] == P).all() and (project.sources()[1:] == 0).all()
    session.set_mask(2, square_mask(9))  # so a later edit still stales everything after it
    assert (project.states()[3:] == S).all()


def test_job_errors(session: Session, project: Project) -> None:
    with pytest.raises(ValueError, match="no labels"):
        session.propagation_job(3, "forward")
    session.set_mask(3, square_mask(3))
    with pytest.raises(ValueError, match="direction"):
        session.propagation_job(3, "sideways")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no video"):
        Session(project).propagation_job(3)
    assert session.propagation_job(3, "backward").total == 3


def test_worker_thread_while_the_gui_thread_reads(session: Session) -> None:
    project = session.project
    session.set_mask(0, square_mask(0))
    events: list[ChangeEvent] = []
    session.subscribe(events.append)
    job = session.propagation_job(0, "forward")
    errors: list[BaseException] = []

    def work() -> None:
        try:
            job.run()
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=work)
    worker.start()
    while worker.is_alive():
        for t in range(N):
            labels = session.labels(t)
            assert labels.mask.shape == square_mask(0).shape
        project.states()
    worker.join()
    assert not errors and job.done == N - 1
    assert [e.frames for e in events if e.frames] == [(t,) for t in range(1, N)]
    assert events[-1].history_changed


def test_real_propagator_follows_the_moving_square(tmp_path: Path) -> None:
    frames, masks = make_moving_square_frames(n=8)
    folder = write_frame_folder(tmp_path / "frames", frames)[0].parent
    with VideoSource.open(folder) as video:
        info = video.info
        project = Project.new(folder, len(video), info.height, info.width)
        session = Session(project, video, encoder=LabEncoder())
        session.add_object("square")
        session.set_mask(0, masks[0])
        session.propagation_job(0, "forward").run()
        last = project.labels(7).mask == 1
        truth = masks[7] == 1
        iou = (last & truth).sum() / (last | truth).sum()
        assert iou > 0.6
        assert (project.states()[1:] == P).all()
        conf = project.confidences()[1:]
        assert ((conf >= 0) & (conf <= 1)).all()
        project.close()


def test_saved_propagation_round_trips(session: Session, tmp_path: Path) -> None:
    session.set_mask(0, square_mask(0))
    session.propagation_job(0, "forward").run()
    session.save(tmp_path / "p.trackpaint")
    with Project.open(tmp_path / "p.trackpaint") as back:
        assert back.states().tolist() == session.project.states().tolist()
        np.testing.assert_array_equal(back.confidences(), session.project.confidences())
        np.testing.assert_array_equal(back.labels(N - 1).mask, square_mask(0))
        assert back.keyframes() == [0]


def test_a_run_too_big_to_undo_clears_the_history(project: Project, fake: FakePropagator) -> None:
    frames = [np.zeros((H, W, 3), np.uint8)] * N
    session = Session(
        project,
        ArrayVideo(frames),
        propagator=fake,
        history=HistoryLimits(max_bytes=1500),
    )
    session.add_object("noise")
    session.set_mask(0, np.random.default_rng(0).integers(0, 2, (H, W), dtype=np.uint8))
    session.propagation_job(0).run()  # before-images are all EMPTY: small, undoable
    assert session.undo_label == "Propagate from frame 0"
    session.set_mask(0, np.random.default_rng(1).integers(0, 2, (H, W), dtype=np.uint8))
    for _ in session.propagation_job(0):  # would have to keep 11 noisy masks
        assert session.history_bytes <= 1500  # bounded while running, not only at the end
    assert not session.can_undo and not session.can_redo and session.history_bytes == 0
    assert (project.states()[1:] == P).all()
    np.testing.assert_array_equal(project.labels(N - 1).mask, project.labels(0).mask)


def test_undo_cancels_a_stroke_in_progress(session: Session) -> None:
    session.set_mask(0, square_mask(0))
    session.begin_stroke(0, 1, 2)
    session.stroke_to(25, 20)
    assert session.undo()
    assert not session.stroke_active and session.project.state(0) == E
