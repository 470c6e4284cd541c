"""Smart selection core: colour models, graph cut, the box -> mask selector and its clicks."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tests.tools.conftest import disk_image
from tracker_core.selection import (
    Click,
    SelectionConfig,
    SmartSelector,
    box_region,
    clip_box,
    crop_window,
    edge_weights,
    fit_gmm,
    gmm_loglik,
    graph_cut,
)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def test_gmm_fits_two_clusters_and_scores_them_higher_than_elsewhere() -> None:
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 1, (300, 3)), rng.normal(10, 1, (300, 3))]).astype(np.float32)
    gmm = fit_gmm(x, 2)
    assert sorted(np.round(gmm.means[:, 0]).tolist()) == [0.0, 10.0]
    assert np.isclose(gmm.weights.sum(), 1.0)
    ll = gmm_loglik(gmm, np.array([[0, 0, 0], [10, 10, 10], [5, 5, 5]], np.float32))
    assert ll[0] > ll[2] and ll[1] > ll[2]
    weighted = fit_gmm(x, 1, sample_weights=np.r_[np.ones(300), np.full(300, 9.0)])
    assert weighted.means[0, 0] == pytest.approx(9.0, abs=0.3)


def test_edge_weights_are_low_across_a_colour_edge_and_zero_off_the_grid() -> None:
    z = np.zeros((4, 6, 3), np.float32)
    z[:, 3:] = 50
    e = edge_weights(z, 10.0)
    assert e.shape == (4, 4, 6)
    assert e[0, 0, 2] < 0.1 * e[0, 0, 0] and e[0, 0, 0] == pytest.approx(10.0)
    assert e[0, :, -1].max() == 0 and e[1, -1].max() == 0  # no right / down neighbour
    assert e[2, 0, 0] == pytest.approx(10.0 / np.sqrt(2))


def test_graph_cut_follows_unaries_edges_and_hard_seeds() -> None:
    z = np.zeros((6, 8, 1), np.float32)
    z[:, 4:] = 10
    e = edge_weights(z, 5.0)
    fg, bg = np.zeros((6, 8)), np.zeros((6, 8))
    bg[:, :2] = 5  # the left is expensive as background, the right as foreground
    fg[:, 6:] = 5
    none = np.zeros((6, 8), bool)
    cut = graph_cut(fg, bg, e, none, none)
    assert cut[:, :4].all() and not cut[:, 4:].any()  # snaps to the colour edge
    hard = none.copy()
    hard[0, 7] = True
    assert graph_cut(fg, bg, e, hard, none)[0, 7]
    assert not graph_cut(fg, bg, e, none, ~none).any()  # hard background wins


def test_crop_window_rescales_small_and_large_boxes_to_the_working_size() -> None:
    cfg = SelectionConfig(work_pixels=10_000)
    small = crop_window((10, 10, 30, 30), (480, 854), cfg)
    large = crop_window((0, 0, 400, 400), (480, 854), cfg)
    assert small.scale == cfg.max_upscale  # a tiny box is enlarged, up to the cap
    assert large.scale == pytest.approx(0.25)
    assert (small.x0, small.y0) == (4, 4)  # min_margin
    inside = box_region((10, 10, 30, 30), small)
    assert inside.sum() == pytest.approx(20 * 20 * 4, rel=0.1)
    with pytest.raises(ValueError, match="smaller than 2x2"):
        clip_box((5, 5, 6, 100), (50, 50))


def test_box_selects_the_object_and_clicks_fix_mistakes() -> None:
    image, disk = disk_image()
    selector = SmartSelector(image, (22, 12, 59, 49))
    mask = selector.update()
    assert mask.shape == disk.shape and mask.dtype == bool
    assert iou(mask, disk) > 0.9
    assert not mask[:, :22].any() and not mask[49:].any()  # nothing outside the box
    removed = selector.update([Click(40, 30, positive=False)])
    assert not removed[30, 40] and removed.sum() < mask.sum()
    back = selector.update([Click(40, 30, positive=False), Click(40, 30, positive=True)])
    assert back[30, 40]


def test_a_positive_click_pulls_in_a_region_of_another_colour() -> None:
    image, disk = disk_image()
    box = (4, 12, 59, 58)  # also covers the blue square at (8..18, 44..54)
    selector = SmartSelector(image, box)
    first = selector.update()
    square = np.zeros_like(disk)
    square[44:54, 8:18] = True
    target = disk | square
    clicked = selector.update([Click(12, 48, positive=True)])
    assert clicked[square].mean() > 0.9
    assert iou(clicked, target) >= iou(first, target)


def test_initial_mask_is_refined_not_recomputed() -> None:
    image, disk = disk_image()
    rough = disk.copy()
    rough[:22] = False
    selector = SmartSelector(image, (22, 8, 59, 49), initial=rough)
    refined = selector.update([Click(40, 20, positive=True)])
    assert iou(refined, disk) > iou(rough, disk) + 0.1
    with pytest.raises(ValueError, match="does not match"):
        SmartSelector(image, (0, 0, 10, 10), initial=np.zeros((3, 3), bool))


def test_rejects_bad_inputs() -> None:
    with pytest.raises(ValueError, match="uint8 RGB"):
        SmartSelector(np.zeros((10, 10), np.uint8), (0, 0, 5, 5))
    with pytest.raises(ValueError):
        SelectionConfig(iterations=0)


def test_foreground_bias_gives_ambiguous_pixels_to_the_background() -> None:
    # A blurred disk: its rim blends object and background colour, so only the bias decides it.
    image, disk = disk_image()
    blurred = cv2.GaussianBlur(image, (0, 0), 1.0)
    box = (22, 12, 59, 49)
    sizes, scores = [], []
    for bias in (0.0, 0.5, 2.0):
        mask = SmartSelector(blurred, box, SelectionConfig(fg_bias=bias)).update()
        sizes.append(int(mask.sum()))
        scores.append(iou(mask, disk))
    assert sizes[0] > sizes[1] > sizes[2] > disk.sum()  # the blurred rim is given up first
    assert scores[0] < scores[1] < scores[2] and scores[0] > 0.8
    assert SelectionConfig().fg_bias > 0  # on by default (benchmarks/RESULTS.md)
    with pytest.raises(ValueError, match="fg_bias"):
        SelectionConfig(fg_bias=-1.0)


def two_disks_image() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two red disks (radius 8 at (20, 24) and (46, 24)) on a noisy green background.
    Returns ``(image (H, W, 3) uint8, left disk, right disk)`` (masks ``(H, W) bool``)."""
    rng = np.random.default_rng(1)
    h, w = 48, 68
    image = np.empty((h, w, 3), np.float32)
    image[:] = (60, 150, 70)
    ys, xs = np.mgrid[:h, :w]
    left = (xs - 20) ** 2 + (ys - 24) ** 2 <= 8**2
    right = (xs - 46) ** 2 + (ys - 24) ** 2 <= 8**2
    image[left | right] = (200, 40, 40)
    image += rng.normal(0, 6, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8), left, right


def test_a_local_click_changes_only_the_region_it_lands_in() -> None:
    # Both disks are the same colour: a negative click on one must not take the other away.
    # The local mode guarantees it (the other disk is another component of the mask; only the
    # upsampling to image resolution may move pixels next to the clicked one).
    image, left, right = two_disks_image()
    selector = SmartSelector(image, (8, 12, 60, 37))
    first = selector.update()
    assert iou(first, left | right) > 0.9
    after = selector.update([Click(20, 24, positive=False)])
    assert after[left].mean() < 0.1  # the clicked disk is removed ...
    near = cv2.dilate(left.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    assert np.array_equal(after & ~near, first & ~near)  # ... and nothing else changed
    assert after[right].mean() > 0.95


def test_local_clicks_are_hard_seeds_and_replay_from_the_box_result() -> None:
    image, _ = disk_image()
    box = (22, 12, 59, 49)
    clicks = [Click(40, 30, positive=False), Click(46, 30, positive=True)]
    selector = SmartSelector(image, box)
    first = selector.update()
    both = selector.update(clicks)
    assert not both[30, 40] and both[30, 46]  # the first click's seed did not flip back
    # A list that is not an extension of the applied one replays from the box result, with
    # the box step's colour models: the same masks as a fresh selector.
    fresh = SmartSelector(image, box)
    fresh.update()
    assert np.array_equal(selector.update(clicks[:1]), fresh.update(clicks[:1]))
    assert np.array_equal(selector.update(), first)
    assert np.array_equal(selector.update(clicks), both)


def test_click_mode_is_checked_and_the_global_mode_still_works() -> None:
    with pytest.raises(ValueError, match="click_mode"):
        SelectionConfig(click_mode="nearby")
    assert SelectionConfig().click_mode == "local"  # benchmarks/RESULTS.md, round 3
    image, disk = disk_image()
    selector = SmartSelector(image, (22, 12, 59, 49), SelectionConfig(click_mode="global"))
    assert iou(selector.update(), disk) > 0.9
    assert not selector.update([Click(40, 30, positive=False)])[30, 40]


def test_clicks_before_the_first_cut_are_applied_after_the_box_cut() -> None:
    image, _ = disk_image()
    box = (22, 12, 59, 49)
    clicks = [Click(40, 30, positive=False)]
    direct = SmartSelector(image, box).update(clicks)
    stepwise = SmartSelector(image, box)
    stepwise.update()
    assert np.array_equal(direct, stepwise.update(clicks))


def test_a_click_in_a_thin_sliver_seeds_only_the_sliver() -> None:
    # The mask misses a 2-px rim of the disk; a click on the rim asks for the rim only. A seed
    # of the full click radius (5 px) would be fixed foreground 3 px into the background.
    image, disk = disk_image()
    ys, xs = np.mgrid[: disk.shape[0], : disk.shape[1]]
    r = np.hypot(xs - 40, ys - 30)
    rough = r <= 12
    click = Click(40, 17, positive=True)  # on the rim (radius 13), 1 px from the mask
    outside = r > 15.5
    fitted = SmartSelector(image, (22, 12, 59, 49), initial=rough).update([click])
    assert fitted[17, 40] and not (fitted & outside).any()
    assert iou(fitted, disk) > iou(rough, disk)
    fixed = SmartSelector(image, (22, 12, 59, 49), SelectionConfig(click_fit=0), initial=rough)
    assert (fixed.update([click]) & outside).any()  # what the fixed-size seed did
    assert SelectionConfig().click_fit > 0  # on by default (benchmarks/RESULTS.md)
