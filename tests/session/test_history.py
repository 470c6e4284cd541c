"""History on its own: bounded undo/redo stacks, byte accounting, open (job) steps, labels."""

from __future__ import annotations

import pytest

from tracker_core.history import History, HistoryLimits, Step
from tracker_core.project import StoredFrame


def frame_of(nbytes: int) -> StoredFrame:
    """A stored frame whose payload is ``nbytes`` bytes (``StoredFrame.nbytes`` adds 64)."""
    return StoredFrame(mask_png=b"x" * nbytes)


def inverse_of(step: Step) -> Step:
    """An ``apply`` that restores nothing and returns an inverse with the same content."""
    return Step(step.label, dict(step.frames), dict(step.states), step.objects)


def test_push_undo_redo_and_labels() -> None:
    history = History()
    assert not history.can_undo and not history.can_redo
    assert history.undo_label is None and history.redo_label is None
    history.push(Step("Paint"))
    history.push(Step("Erase"))
    assert history.undo_label == "Erase" and history.undo_labels == ("Paint", "Erase")
    applied: list[str] = []

    def apply(step: Step) -> Step:
        applied.append(step.label)
        return inverse_of(step)

    assert history.undo(apply).label == "Erase"
    assert history.undo_label == "Paint" and history.redo_label == "Erase"
    assert history.redo(apply).label == "Erase"
    assert applied == ["Erase", "Erase"]
    assert history.undo(apply) is not None and history.undo(apply) is not None
    assert history.undo(apply) is None  # nothing left: apply not called
    assert applied == ["Erase", "Erase", "Erase", "Paint"]
    assert history.redo_labels == ("Erase", "Paint")
    history.push(Step("Fill"))  # a new step clears redo
    assert not history.can_redo and history.undo_labels == ("Fill",)
    assert history.redo(apply) is None


def test_bounds_drop_the_oldest_steps() -> None:
    history = History(HistoryLimits(max_steps=2))
    for label in "abc":
        history.push(Step(label))
    assert history.undo_labels == ("b", "c")
    history = History(HistoryLimits(max_bytes=1000))
    history.push(Step("small", {0: frame_of(100)}))
    history.push(Step("big", {1: frame_of(700)}))
    assert history.undo_labels == ("big",)  # 128+164 + 128+764 > 1000
    history.push(Step("huge", {2: frame_of(5000)}))
    assert history.undo_labels == ()  # a step bigger than max_bytes is not kept


def test_nbytes_counts_both_stacks() -> None:
    history = History()
    history.push(Step("a", {0: frame_of(100)}, {(3, 1): 2}))
    history.push(Step("b"))
    assert history.nbytes == (128 + 164 + 16) + 128
    history.undo(inverse_of)
    assert history.nbytes == (128 + 164 + 16) + 128
    history.clear()
    assert history.nbytes == 0 and not history.can_undo and not history.can_redo


def test_open_step_is_pushed_on_its_first_frame_and_undoable_once_closed() -> None:
    history = History()
    history.push(Step("Paint"))
    history.undo(inverse_of)
    assert history.can_redo
    run = history.open_step("Propagate from frame 0")
    assert history.undo_labels == () and history.can_redo  # not on the stack yet
    calls: list[int] = []

    def stored(t: int) -> StoredFrame:
        calls.append(t)
        return frame_of(10)

    history.record_frame(run, 1, lambda: stored(1))
    history.record_frame(run, 2, lambda: stored(2))
    history.record_frame(run, 1, lambda: stored(1))  # kept its first content
    assert calls == [1, 2] and sorted(run.frames) == [1, 2]
    assert history.undo_labels == ("Propagate from frame 0",) and not history.can_redo
    assert not history.can_undo and history.undo_label is None  # still running
    assert history.undo(inverse_of) is None
    history.close(run)
    assert history.can_undo and history.undo_label == "Propagate from frame 0"


def test_an_open_step_is_never_trimmed_while_open() -> None:
    history = History(HistoryLimits(max_steps=1))
    run = history.open_step("run")
    history.record_frame(run, 0, lambda: frame_of(1))
    history.push(Step("edit meanwhile"))
    assert history.undo_labels == ("run", "edit meanwhile")  # over the bound, the run is kept
    history.close(run)
    assert history.undo_labels == ("edit meanwhile",)


def test_a_run_outgrowing_max_bytes_clears_the_history() -> None:
    history = History(HistoryLimits(max_bytes=1000))
    history.push(Step("Paint"))
    run = history.open_step("run")
    for t in range(3):
        history.record_frame(run, t, lambda: frame_of(300))
    assert run.dropped and run.frames == {}
    assert history.undo_labels == () and history.nbytes == 0
    history.record_frame(run, 7, lambda: pytest.fail("a dropped run records nothing"))
    history.close(run)
    assert not history.can_undo


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError):
        HistoryLimits(max_steps=0)
    with pytest.raises(ValueError):
        HistoryLimits(max_bytes=0)


def test_a_long_run_accounts_its_bytes_in_linear_time() -> None:
    """Recording frame n of a run must not re-sum the n-1 frames before it (O(n^2) per run)."""
    reads = [0]

    class Counted(StoredFrame):
        @property
        def nbytes(self) -> int:
            reads[0] += 1
            return 100

    history = History()
    step = history.open_step("Propagate")
    n = 400
    for i in range(n):
        history.record_frame(step, i, lambda: Counted(mask_png=b""))
    assert step.nbytes == 128 + 100 * n
    assert reads[0] <= 2 * n  # the old re-summing read ~n^2/2 = 80,000 times
    history.close(step)
    assert history.can_undo and history.nbytes == 128 + 100 * n
