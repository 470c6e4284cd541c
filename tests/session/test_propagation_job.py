"""PropagationJob driven by a host that is not a Session: the JobHost protocol is all it uses."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from tests.session.conftest import FakePropagator, H, N, W, square_mask
from tracker_core.history import History, Step
from tracker_core.labels import FrameLabels, ObjectSpec
from tracker_core.project import FrameState, ObjectProvenance, Project
from tracker_core.propagate import FeatureCache, PropagatedFrame
from tracker_core.propagation_job import JobHost, PropagationJob, StartedReferences


class RecordingHost:
    """A JobHost with public methods only (so a job reaching for session internals fails):
    writes every result as PROPAGATED and records the calls."""

    def __init__(self, project: Project) -> None:
        self._project = project
        self.history = History()
        self.calls: list[tuple] = []
        self.cache = FeatureCache()

    @property
    def project(self) -> Project:
        return self._project

    def frame(self, index: int) -> np.ndarray:
        return np.full((H, W, 3), index, np.uint8)

    def run_objects(self, start: int) -> tuple[int, ...]:
        return (1,)

    def run_origin(self, start: int, direction: int, object_id: int) -> int:
        self.calls.append(("origin", start, direction, object_id))
        return start

    def run_references(
        self, start: int, start_labels: FrameLabels, objects: Sequence[int]
    ) -> Mapping[int, FrameLabels]:
        self.calls.append(("references", start, tuple(objects)))
        return StartedReferences(self._project, [], start, start_labels, objects)

    def feature_cache(self, propagator) -> FeatureCache | None:
        return self.cache

    def open_run(self, label: str) -> Step:
        return self.history.open_step(label)

    def write_frame(self, run, start, direction, running, result: PropagatedFrame, prev) -> bool:
        self.calls.append(("write", result.index, prev, dict(running)))
        t = result.index
        self.history.record_frame(run, t, lambda: self._project.stored(t))
        prov = {1: ObjectProvenance(FrameState.PROPAGATED, result.confidence, start)}
        self._project.set_labels(t, result.labels, prov)
        return result.index != 4

    def finish_run(self, run: Step, ms_per_frame: float | None) -> None:
        self.history.close(run)
        self.calls.append(("finished", ms_per_frame is not None))


def test_a_job_runs_through_the_host_protocol_only(tmp_path: Path) -> None:
    project = Project.new(tmp_path / "clip.avi", N, H, W)
    project.add_object(ObjectSpec(1, "car", (255, 0, 0)))
    project.set_labels(1, FrameLabels(square_mask(4)), {1: ObjectProvenance(FrameState.PAINTED)})
    host = RecordingHost(project)
    typed: JobHost = host
    job = PropagationJob(typed, 1, (1,), FakePropagator())
    assert job.objects == (1,) and job.stops == [{1: N}] and job.total == N - 2
    done = [p.frame for p in job]
    assert done == [2, 3]  # the host said stop after writing frame 4 (not counted)
    assert job.finished and job.done == 2
    kinds = [c[0] for c in host.calls]
    assert kinds == ["origin", "references", "write", "write", "write", "finished"]
    assert host.calls[2] == ("write", 2, 1, {1: (N, 1)})
    assert host.calls[3][2] == 2  # prev = the frame written before
    assert host.history.undo_label == "Propagate from frame 1"
    assert project.state(3) == FrameState.PROPAGATED
    project.close()


def test_session_still_exports_the_job_classes() -> None:
    import tracker_core.propagation_job as job_module
    import tracker_core.session as session_module

    assert session_module.PropagationJob is job_module.PropagationJob
    assert session_module.PropagationProgress is job_module.PropagationProgress
    assert session_module.propagation_stop is job_module.propagation_stop
