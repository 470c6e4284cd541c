"""Confidence: per-object scores, the propagator reporting exactly them, and the one rule for
uncertain frames (timeline marks and ``N``)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.fixtures_video import make_moving_square_frames
from tracker_core.confidence import (
    DEFAULT_UNCERTAIN_THRESHOLD,
    object_confidences,
    uncertain_frames,
    uncertain_mask,
)
from tracker_core.encoder import LabEncoder
from tracker_core.labels import FrameLabels, ObjectSpec
from tracker_core.project import FrameState, ObjectProvenance, Project
from tracker_core.propagate import encode_labels, layout_for, mask_confidence, propagate


def test_per_object_scores_and_the_frame_score_is_their_minimum() -> None:
    soft = torch.zeros(3, 8, 8)
    soft[0] = 1
    soft[:, 0:4, 0:4] = torch.tensor([0.0, 1.0, 0.0])[:, None, None]  # object 1: crisp
    soft[:, 4:8, 4:8] = torch.tensor([0.4, 0.0, 0.6])[:, None, None]  # object 2: vague
    start_area = torch.tensor([16.0, 16.0])
    scores = object_confidences(soft, start_area)
    assert scores[0] == pytest.approx(1.0)
    assert scores[1] == pytest.approx(0.2)  # 2 * (0.6 - 0.5)
    assert mask_confidence(soft, start_area) == pytest.approx(0.2)
    assert object_confidences(soft[:1], None).shape == (0,)
    assert mask_confidence(soft[:1]) == 1.0


def test_the_propagator_reports_the_confidence_module_scores() -> None:
    frames, masks = make_moving_square_frames(n=5, h=48, w=64)
    pts = np.array([[20.0, 20.0, 1.0]], np.float32)
    refs = {0: FrameLabels(masks[0], {7: pts})}
    encoder = LabEncoder()
    start = encode_labels(refs[0], layout_for(refs, {7: 1}), (48, 64), encoder.stride, 0.5)
    start_area = start[1:2].flatten(1).sum(dim=1)
    out = list(propagate(frames.__getitem__, 0, 5, refs, {7: 1}, encoder))
    assert [r.index for r in out] == [1, 2, 3, 4]
    for res in out:
        expected = float(object_confidences(res.soft[:2], start_area)[0])
        assert res.confidence == pytest.approx(expected)
        assert res.object_confidence[1] == pytest.approx(expected)
        assert math.isnan(res.object_confidence[7])  # keypoint objects have no measure


def test_uncertain_mask_rule() -> None:
    P, K, S, E = FrameState.PROPAGATED, FrameState.PAINTED, FrameState.STALE, FrameState.EMPTY
    states = np.array([K, P, P, S, P, E, P], np.uint8)
    conf = np.array([np.nan, 0.9, 0.2, 0.1, np.nan, np.nan, 0.72], np.float32)
    assert np.flatnonzero(uncertain_mask(states, conf, 0.5)).tolist() == [2]
    assert np.flatnonzero(uncertain_mask(states, conf, DEFAULT_UNCERTAIN_THRESHOLD)).tolist() == [
        2,
        6,
    ]


def test_uncertain_frames_per_object_and_for_any(tmp_path: Path) -> None:
    a = ObjectSpec(1, "a", (1, 2, 3))
    b = ObjectSpec(2, "b", (3, 2, 1), "keypoints", ("p",))
    with Project.new(tmp_path / "v.avi", 6, 8, 8, (a, b)) as project:
        mask = np.zeros((8, 8), np.uint8)
        project.set_frame(0, FrameLabels(mask), FrameState.PAINTED)
        for t, (ca, cb) in enumerate([(0.9, 0.9), (0.3, 0.9), (0.9, 0.4), (0.1, 0.1)], start=1):
            project.set_labels(
                t,
                FrameLabels(mask),
                {
                    1: ObjectProvenance(FrameState.PROPAGATED, ca, 0),
                    2: ObjectProvenance(FrameState.PROPAGATED, cb, 0),
                },
            )
        project.set_object_states([4], 2, FrameState.STALE)
        assert uncertain_frames(project, 0.5, 1).tolist() == [2, 4]
        assert uncertain_frames(project, 0.5, 2).tolist() == [3]
        assert uncertain_frames(project, 0.5).tolist() == [2, 3, 4]
        assert project.confidences()[1:5].tolist() == pytest.approx([0.9, 0.3, 0.4, 0.1])
