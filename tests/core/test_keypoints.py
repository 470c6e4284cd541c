"""Keypoint decoding (sub-cell peak), joints kept on their mask, and the PCK metric."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from tests.fixtures_video import make_moving_square_frames
from tracker_core.encoder import LabEncoder
from tracker_core.evaluate import (
    BADJA_JOINTS,
    KeypointFrameResult,
    KeypointResult,
    load_badja,
    pck,
)
from tracker_core.labels import FrameLabels
from tracker_core.propagate import (
    LabelLayout,
    PropagationConfig,
    heatmaps_to_keypoints,
    keypoint_owners,
    keypoints_to_heatmaps,
    peak_centroid,
    propagate,
    weight_keypoints_by_mask,
)

# sub-cell offsets from a cell centre, in cells: every quadrant, near and at the half-cell edge
OFFSETS = [(0.0, 0.0), (0.3, -0.2), (-0.45, 0.4), (0.49, 0.49), (-0.25, -0.1)]


@pytest.mark.parametrize(("dy", "dx"), OFFSETS)
def test_peak_decoding_finds_a_sub_cell_gaussian_peak(dy, dx):
    stride, grid = 8, (10, 12)
    x, y = (5 + dx + 0.5) * stride - 0.5, (4 + dy + 0.5) * stride - 0.5  # pixel coordinates
    maps = keypoints_to_heatmaps(np.array([[x, y, 1.0]], np.float32), stride, grid, sigma=0.5)
    out = heatmaps_to_keypoints(maps, stride, 0.3, 0.5, decode="peak", window=1)
    # within 0.1 cell (0.8 px); the cell centre alone is up to 0.5 cell (4 px) off
    assert abs(out[0, 0] - x) < 0.8 and abs(out[0, 1] - y) < 0.8
    assert out[0, 2] == 1.0


def test_peak_decoding_ignores_a_second_distant_mode_that_top3_averages_in():
    grid = (10, 12)
    heat = torch.zeros(1, *grid)
    heat[0, 2, 2], heat[0, 2, 3] = 1.0, 0.5  # the joint: between cells (2, 2) and (2, 3)
    heat[0, 8, 10] = 0.9  # a weaker copy far away (e.g. the other leg)
    cy, cx = peak_centroid(heat[0], 1)
    assert cy == pytest.approx(2.0) and cx == pytest.approx(2 + 0.5 / 1.5)
    peak = heatmaps_to_keypoints(heat, 4, 0.0, decode="peak")
    top3 = heatmaps_to_keypoints(heat, 4, 0.0, decode="top3")
    assert peak[0, 0] == pytest.approx((cx + 0.5) * 4 - 0.5)
    assert top3[0, 1] > (2 + 0.5) * 4 + 4  # pulled more than a cell towards the other mode


def test_peak_centroid_at_the_grid_border_and_for_negative_heat():
    heat = torch.full((4, 5), -0.1)
    heat[0, 0] = 1.0
    heat[0, 1] = 1.0 / 3
    assert peak_centroid(heat, 1) == pytest.approx((0.0, 0.25))  # negatives clamp to 0
    with pytest.raises(ValueError, match="decode"):
        heatmaps_to_keypoints(heat[None], 8, 0.3, decode="mean")


def test_config_rejects_unknown_keypoint_settings():
    with pytest.raises(ValueError):
        PropagationConfig(keypoint_decode="argmax")
    with pytest.raises(ValueError):
        PropagationConfig(keypoint_feedback="blur")
    with pytest.raises(ValueError):
        PropagationConfig(keypoint_mask_weight=1.5)


def test_keypoint_owner_is_the_mask_holding_most_of_its_points():
    mask = np.zeros((20, 30), np.uint8)
    mask[:, :10], mask[:, 10:20] = 3, 5
    inside = np.array([[2, 4, 1], [12, 5, 1], [14, 6, 1], [np.nan, np.nan, 0]], np.float32)
    on_background = np.array([[25, 4, 1], [26, 4, 1], [3, 3, 1]], np.float32)
    labels = FrameLabels(mask, {7: inside, 8: on_background})
    layout = LabelLayout((3, 5), ((7, 4), (8, 3)))
    assert keypoint_owners(labels, layout) == {7: 5}
    assert keypoint_owners(FrameLabels(None, {7: inside}), LabelLayout((), ((7, 4),))) == {}


def test_mask_weighting_keeps_heat_on_the_owner_only():
    layout = LabelLayout((1, 2), ((9, 1), (10, 1)))
    soft = torch.zeros(layout.num_channels, 2, 2)
    soft[0] = 0.2
    soft[1, 0] = 0.8  # object 1 on the top row
    soft[2, 1] = 0.8  # object 2 on the bottom row
    soft[3:] = 1.0  # both joints' heat everywhere
    out = weight_keypoints_by_mask(soft, layout, {9: 2}, 1.0)
    assert torch.allclose(out[3], torch.tensor([[0.0, 0.0], [0.8, 0.8]]))
    assert torch.equal(out[4], soft[4]) and torch.equal(out[:3], soft[:3])  # unowned, masks
    half = weight_keypoints_by_mask(soft, layout, {9: 2}, 0.5)
    assert torch.allclose(half[3], torch.tensor([[0.5, 0.5], [0.9, 0.9]]))


def test_propagated_joint_with_its_mask_follows_the_square():
    frames, masks = make_moving_square_frames(n=8, h=64, w=96)
    ys, xs = np.nonzero(masks[0])
    pts = np.array([[xs.mean(), ys.mean(), 1.0]], np.float32)
    refs = {0: FrameLabels(masks[0], {4: pts})}
    cfg = PropagationConfig(radius=3, keyframe_radius=3, keypoint_decode="peak")
    cfg_mask = PropagationConfig(**{**cfg.__dict__, "keypoint_mask_weight": 1.0})
    for config in (cfg, cfg_mask):
        out = list(propagate(frames.__getitem__, 0, 8, refs, {4: 1}, LabEncoder(4), config))
        x, y, visible = out[-1].labels.keypoints[4][0]
        assert masks[7][round(y), round(x)] == 1 and visible == 1  # still on the square


def test_pck_against_a_hand_computed_example():
    # visible box: x 0..60, y 0..80 -> diagonal 100, size 0.6 * 100 = 60 px
    gt = np.array([[0, 0], [60, 80], [30, 40], [10, 10]], np.float32)
    vis = np.array([True, True, True, False])
    pred = gt + np.array([[5, 0], [0, 7], [9, 12], [500, 500]], np.float32)  # errors 5, 7, 15
    # alpha 0.1 -> 6 px: only the first; alpha 0.2 -> 12 px: the first two; 0.25 -> 15 px: all
    assert pck(pred, gt, vis, 0.1) == (1, 3)
    assert pck(pred, gt, vis, 0.2) == (2, 3)
    assert pck(pred, gt, vis, 0.25) == (3, 3)  # the invisible joint (500 px off) is not counted
    # BADJA's threshold: alpha * sqrt(mask area); area 4900 -> 70 px, alpha 0.1 -> 7 px
    assert pck(pred, gt, vis, 0.1, size=math.sqrt(4900.0)) == (2, 3)
    pred[0] = np.nan
    assert pck(pred, gt, vis, 0.1) == (0, 3)  # a missing prediction is wrong
    assert pck(pred, gt, np.zeros(4, bool), 0.1) == (0, 0)


def test_keypoint_result_pools_joints_over_frames():
    gt = np.array([[0, 0], [60, 80]], np.float32)
    good = KeypointFrameResult(1, gt + 1, gt, np.array([True, True]), 4900.0)
    half = KeypointFrameResult(
        2, gt + np.array([[1, 1], [40, 0]], np.float32), gt, np.array([True, True]), 100.0
    )
    res = KeypointResult((good, half))
    assert res.counts(0.1) == (3, 4) and res.pck(0.1) == 0.75
    # area: 7 px for the first frame, 1 px for the second (error sqrt(2) > 1)
    assert res.counts(0.1, "area") == (2, 4)
    assert KeypointResult(()).pck(0.1) == 0.0
    with pytest.raises(ValueError):
        res.counts(0.1, "diag")


def test_load_badja_keeps_the_20_annotated_joint_slots(tmp_path):
    joints = [[0, 0]] * 37
    vis = [0] * 37
    for k, slot in enumerate(BADJA_JOINTS):
        joints[slot] = [1080 - 10 * k, 20 * k]  # [row, col] at 1080p
        vis[slot] = 1
    item = {"image_path": "DAVIS/JPEGImages/Full-Resolution/seq/00007.jpg", "joints": joints}
    path = tmp_path / "seq.json"
    path.write_text(json.dumps([{**item, "visibility": vis}]))
    (b,) = load_badja(path, (540, 960))
    assert len(BADJA_JOINTS) == 20 and b.frame == 7 and b.visible.all()
    assert np.allclose(b.joints[3], [20 * 3 / 2, (1080 - 30) / 2])  # (x, y) at half scale


def test_a_longer_keypoint_memory_gives_the_joints_of_that_memory_and_keeps_masks():
    frames, masks = make_moving_square_frames(n=7, h=64, w=96)
    ys, xs = np.nonzero(masks[0])
    pts = np.array([[xs.mean(), ys.mean(), 1.0], [xs.min() + 2.0, ys.min() + 2.0, 1.0]])
    refs = {0: FrameLabels(masks[0], {4: pts.astype(np.float32)})}
    base = dict(radius=3, keyframe_radius=3, keypoint_mask_weight=0.0)

    def run(**kw):
        cfg = PropagationConfig(**base, **kw)
        return list(propagate(frames.__getitem__, 0, 7, refs, {4: 2}, LabEncoder(4), cfg))

    split = run(n_recent=1, keypoint_n_recent=3)
    long = run(n_recent=3, keypoint_n_recent=0)
    short = run(n_recent=1, keypoint_n_recent=0)
    for a, b, c in zip(split, long, short):
        assert np.allclose(a.labels.keypoints[4], b.labels.keypoints[4], atol=1e-3)
        assert np.array_equal(a.labels.mask, c.labels.mask)  # masks keep their memory
