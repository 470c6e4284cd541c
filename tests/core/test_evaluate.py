"""DAVIS measures (J, boundary F), sequence scoring, PCK and the correction loop."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.fixtures_video import make_moving_square_frames
from tracker_core.encoder import LabEncoder
from tracker_core.evaluate import (
    boundary_map,
    f_measure,
    jaccard,
    pck,
    propagate_with_corrections,
    score_sequence,
)
from tracker_core.labels import FrameLabels
from tracker_core.propagate import PropagationConfig, propagate
from tracker_core.propagator import AffinityPropagator


def square(h=100, w=100, y=20, x=20, s=40):
    m = np.zeros((h, w), bool)
    m[y : y + s, x : x + s] = True
    return m


def test_jaccard_values_and_empty_union():
    a, b = square(s=40), square(x=40, s=40)
    assert jaccard(a, a) == 1.0
    assert jaccard(a, b) == pytest.approx(800 / 2400)
    assert jaccard(np.zeros((5, 5), bool), np.zeros((5, 5), bool)) == 1.0


def test_boundary_map_is_one_pixel_wide():
    b = boundary_map(square())
    # seg2bmap marks each transition once: the outside column/row on the left/top side
    # (41 + 40) and the inside column/row on the right/bottom side (40 + 39) of the 40x40 square.
    assert b.sum() == 160
    assert b[19, 30] and b[59, 30] and not b[20, 30] and not b[30, 30]


def test_f_measure_tolerance_follows_the_image_diagonal():
    h = w = 100
    tol = math.ceil(0.008 * math.hypot(h, w))  # 2 px
    a = square(h, w)
    assert f_measure(a, a) == 1.0
    assert f_measure(a, square(h, w, x=20 + tol)) > 0.99  # within tolerance: still perfect-ish
    assert f_measure(a, square(h, w, x=20 + 4 * tol)) < 0.7
    assert f_measure(a, np.zeros_like(a)) == 0.0
    assert f_measure(np.zeros_like(a), np.zeros_like(a)) == 1.0


def test_score_sequence_excludes_first_and_last_frames_and_averages_objects():
    gt = np.zeros((50, 50), np.uint8)
    gt[10:30, 10:30] = 1
    gt[35:45, 35:45] = 2
    wrong = np.zeros_like(gt)
    gts = [gt] * 4
    preds = [wrong, gt, gt, wrong]  # first and last frames are wrong but excluded
    sc = score_sequence("s", preds, gts)
    assert sc.j == 1.0 and sc.f == 1.0
    half = gt.copy()
    half[half == 2] = 0  # object 2 missed in the middle frames
    sc2 = score_sequence("s", [gt, half, half, gt], gts)
    assert sc2.j == pytest.approx(0.5) and sc2.jf == pytest.approx(0.5)


def test_pck_threshold_scales_with_the_joint_box():
    gt = np.array([[0, 0], [100, 0], [0, 100]], np.float32)  # box diagonal ~141
    vis = np.array([True, True, True])
    near = gt + np.array([5, 0], np.float32)
    far = gt + np.array([30, 0], np.float32)
    assert pck(near, gt, vis, 0.1) == (3, 3)  # threshold 8.5 px
    assert pck(far, gt, vis, 0.1) == (0, 3)
    assert pck(far, gt, vis, 0.4) == (3, 3)
    assert pck(np.full_like(gt, np.nan), gt, vis, 0.2) == (0, 3)


def test_simulated_corrections_improve_the_sequence_round_by_round():
    frames, masks = make_moving_square_frames(n=12, h=64, w=96)
    # A deliberately weak protocol (radius 1 at stride 8) loses the square, so corrections matter.
    cfg = PropagationConfig(radius=1, keyframe_radius=1, tile=4, n_recent=1)
    for pick in ("oracle", "confidence"):
        rounds = list(
            propagate_with_corrections(
                frames.__getitem__,
                masks,
                AffinityPropagator(LabEncoder(stride=8), cfg),
                corrections=3,
                pick=pick,
            )
        )
        assert len(rounds) == 4
        assert len(rounds[-1][2]) == 4  # frame 0 + three corrected keyframes
        scores = [score_sequence("sq", preds, masks).jf for preds, _, _ in rounds]
        # Each round is scored on its own predictions (not on a shared, later-mutated list).
        assert scores[0] < scores[-1] - 0.05, scores
        assert rounds[0][0] is not rounds[-1][0]


def test_confidence_pick_corrects_the_least_confident_frame_and_oracle_the_worst():
    frames, masks = make_moving_square_frames(n=12, h=64, w=96)
    cfg = PropagationConfig(radius=1, keyframe_radius=1, tile=4, n_recent=1)
    enc = LabEncoder(stride=8)
    first = list(
        propagate(frames.__getitem__, 0, 12, {0: FrameLabels(mask=masks[0])}, {}, enc, cfg)
    )
    least_confident = min(first, key=lambda r: r.confidence).index
    worst = min(first, key=lambda r: jaccard(r.labels.mask > 0, masks[r.index] > 0)).index
    for pick, expected in (("confidence", least_confident), ("oracle", worst)):
        prop = AffinityPropagator(enc, cfg)
        rounds = list(propagate_with_corrections(frames.__getitem__, masks, prop, 1, pick=pick))
        assert rounds[1][2] == {0, expected}, pick
