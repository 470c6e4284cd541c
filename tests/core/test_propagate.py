"""Propagator: the tiled local affinity against a dense reference, label codecs, and tracking."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch

from tests.fixtures_video import make_moving_square_frames, make_square_path_frames
from tracker_core.encoder import LabEncoder, grid_size
from tracker_core.evaluate import jaccard
from tracker_core.labels import FrameLabels
from tracker_core.propagate import (
    PropagationConfig,
    box_reference,
    clamp_offset,
    guided_filter,
    heatmaps_to_keypoints,
    keypoints_to_heatmaps,
    local_affinity_copy,
    make_reference,
    mask_confidence,
    mask_to_soft,
    object_centroids,
    predict_centroids,
    propagate,
    region_offsets,
    region_tiles,
    soft_to_mask,
    translate,
    window_offsets,
    work_size,
)


def dense_reference_copy(query, refs, topk, temperature):
    """Brute force: every query cell scored against every reference cell within its window."""
    c, h, w = query.shape
    out = torch.zeros(refs[0][1].shape[0], h, w)
    for y in range(h):
        for x in range(w):
            scores, labels = [], []
            for feats, labs, r in refs:
                y0, y1, x0, x1 = max(0, y - r), min(h, y + r + 1), max(0, x - r), min(w, x + r + 1)
                f = feats[:, y0:y1, x0:x1].reshape(c, -1)
                s = f.T @ query[:, y, x] - 0.5 * (f * f).sum(0)
                scores.append(s)
                labels.append(labs[:, y0:y1, x0:x1].reshape(labs.shape[0], -1).T)
            s_all, l_all = torch.cat(scores), torch.cat(labels)
            top, idx = s_all.topk(min(topk, len(s_all)))
            wts = torch.softmax(top / temperature, 0)
            out[:, y, x] = (l_all[idx] * wts[:, None]).sum(0)
    return out


@pytest.mark.parametrize(("radii", "tile"), [((2, 3), 4), ((1, 4, 2), 3), ((0,), 5)])
def test_tiled_affinity_matches_dense_reference(radii, tile):
    gen = torch.Generator().manual_seed(0)
    h, w, c, k = 11, 14, 5, 3
    query = torch.randn(c, h, w, generator=gen)
    refs = []
    for r in radii:
        labels = torch.softmax(torch.randn(k, h, w, generator=gen) * 3, dim=0)
        refs.append((torch.randn(c, h, w, generator=gen), labels, r))
    tiled = local_affinity_copy(
        query, [make_reference(f, lab, r, tile) for f, lab, r in refs], 4, 0.3
    )
    dense = dense_reference_copy(query, refs, 4, 0.3)
    assert torch.allclose(tiled, dense, atol=1e-5)


@pytest.mark.parametrize(("radius", "tile"), [(0, 1), (1, 4), (3, 4), (2, 3), (5, 8)])
def test_reference_label_ranges_are_each_tile_windows_min_and_max_on_the_grid(radius, tile):
    gen = torch.Generator().manual_seed(radius * 10 + tile)
    h, w, k = 11, 14, 3
    labels = torch.rand(k, h, w, generator=gen) * 4 - 2  # negative values too
    ref = make_reference(torch.randn(2, h, w, generator=gen), labels, radius, tile)
    tw = math.ceil(w / tile)
    for t in range(ref.lo.shape[0]):
        ty, tx = divmod(t, tw)
        y0, x0 = max(0, ty * tile - radius), max(0, tx * tile - radius)
        y1, x1 = min(h, (ty + 1) * tile + radius), min(w, (tx + 1) * tile + radius)
        window = labels[:, y0:y1, x0:x1].reshape(k, -1)
        assert torch.equal(ref.lo[t], window.amin(dim=1)), t
        assert torch.equal(ref.hi[t], window.amax(dim=1)), t


def test_constant_tiles_are_copied_exactly():
    h, w = 16, 16
    labels = torch.zeros(2, h, w)
    labels[0] = 1.0
    labels[:, 6:9, 6:9] = torch.tensor([0.0, 1.0])[:, None, None]
    feats = torch.randn(4, h, w)
    ref = make_reference(feats, labels, 2, 4)
    out = local_affinity_copy(torch.randn(4, h, w), [ref], 3, 0.1)
    # Far from the object every candidate is background, so the output is exactly background.
    assert torch.equal(out[:, 0:2, 12:16], labels[:, 0:2, 12:16])
    assert torch.allclose(out.sum(0), torch.ones(h, w), atol=1e-5)


def test_mask_to_soft_area_fractions_and_roundtrip():
    mask = np.zeros((32, 40), np.uint8)
    mask[8:16, 8:24] = 3
    mask[0:4, 0:8] = 5
    soft = mask_to_soft(mask, (3, 5), grid_size(32, 40, 8))
    assert soft.shape == (3, 4, 5)
    assert torch.allclose(soft.sum(0), torch.ones(4, 5))
    assert soft[1, 1, 1] == 1.0 and soft[2, 0, 0] == pytest.approx(0.5)
    back = soft_to_mask(mask_to_soft(mask, (3,), (32, 40)), (3,), (32, 40), 1)
    assert np.array_equal(back, np.where(mask == 3, 3, 0))


def full_frame_decode(soft, mask_ids, frame_hw, stride, frame=None, refine_radius=0, subsample=1):
    """Reference decode: every plane (background too) upsampled and filtered over the frame."""
    _, h, w = soft.shape
    up = np.stack(
        [
            cv2.resize(p, (w * stride, h * stride), interpolation=cv2.INTER_LINEAR)
            for p in soft.numpy()
        ]
    )[:, : frame_hw[0], : frame_hw[1]]
    if frame is not None and refine_radius > 0:
        grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
        up = guided_filter(grey, np.ascontiguousarray(up), refine_radius, 1e-3, subsample)
    return np.array((0, *mask_ids), np.uint8)[up.argmax(axis=0)]


@pytest.mark.parametrize(
    ("n_obj", "radius", "sub"),
    [(1, 4, 1), (2, 4, 1), (1, 0, 1), (3, 2, 1), (1, 4, 2), (2, 4, 2), (3, 2, 2), (2, 6, 3)],
)
def test_decoding_only_near_objects_equals_decoding_the_whole_frame(n_obj, radius, sub):
    rng = np.random.default_rng(n_obj + radius)
    h, w, stride = 20, 30, 8
    fg = np.zeros((n_obj, h, w), np.float32)
    for k in range(n_obj):  # objects with soft edges somewhere inside the frame (or at a border)
        y, x = rng.integers(0, h - 4), rng.integers(0, w - 6)
        fg[k, y : y + 4, x : x + 6] = rng.uniform(0.2, 1.0, (4, 6))
    fg /= np.maximum(1.0, fg.sum(0))
    soft = torch.from_numpy(np.concatenate([1 - fg.sum(0, keepdims=True), fg]))
    frame_hw = (h * stride - 5, w * stride - 3)  # frames need not fill the last cells
    frame = rng.integers(0, 256, (*frame_hw, 3), dtype=np.uint8)
    ids = tuple(range(3, 3 + n_obj))
    fast = soft_to_mask(soft, ids, frame_hw, stride, frame, radius, refine_subsample=sub)
    full = full_frame_decode(soft, ids, frame_hw, stride, frame, radius, sub)
    assert fast.any()
    assert (fast != full).mean() < 1e-4  # argmax ties may round either way


@pytest.mark.parametrize(("sub", "radius"), [(2, 4), (3, 6), (3, 4)])
def test_a_subsampled_refinement_of_the_crop_is_the_whole_frames(sub, radius):
    """The crop around an object in mid-frame starts on a block boundary of the whole frame:
    the same blocks, so exactly the same mask (an unaligned crop differs on 65-115 pixels)."""
    rng = np.random.default_rng(5)
    h, w, stride = 20, 30, 8
    fg = np.zeros((1, h, w), np.float32)
    fg[0, 8:12, 11:17] = rng.uniform(0.3, 1.0, (4, 6))
    soft = torch.from_numpy(np.concatenate([1 - fg, fg]))
    frame_hw = (h * stride - 5, w * stride - 3)
    frame = rng.integers(0, 256, (*frame_hw, 3), dtype=np.uint8)
    fast = soft_to_mask(soft, (1,), frame_hw, stride, frame, radius, refine_subsample=sub)
    full = full_frame_decode(soft, (1,), frame_hw, stride, frame, radius, sub)
    assert fast.sum() > 500
    assert np.array_equal(fast, full)


def test_keypoint_heatmap_roundtrip_and_invisible_points():
    pts = np.array([[20.0, 12.0, 1.0], [np.nan, np.nan, 0.0], [50.0, 30.0, 1.0]], np.float32)
    maps = keypoints_to_heatmaps(pts, 4, (12, 16), sigma=0.5)
    back = heatmaps_to_keypoints(maps, 4, 0.3)
    assert back[1, 2] == 0 and np.isnan(back[1, 0])
    assert np.allclose(back[[0, 2], :2], pts[[0, 2], :2], atol=2.0)


def test_confidence_is_high_for_crisp_and_low_for_ambiguous_masks():
    crisp = torch.zeros(2, 8, 8)
    crisp[0] = 1
    crisp[:, 2:5, 2:5] = torch.tensor([0.0, 1.0])[:, None, None]
    vague = torch.full((2, 8, 8), 0.5)
    assert mask_confidence(crisp) > 0.95
    assert mask_confidence(vague) < 0.05


def test_propagation_tracks_a_moving_square_forward_and_backward():
    frames, masks = make_moving_square_frames(n=10, h=64, w=96)
    cfg = PropagationConfig(radius=3, keyframe_radius=4, tile=4)
    enc = LabEncoder(stride=4)
    fwd = list(propagate(frames.__getitem__, 0, 10, {0: FrameLabels(mask=masks[0])}, {}, enc, cfg))
    assert [r.index for r in fwd] == list(range(1, 10))
    ious = [jaccard(r.labels.mask > 0, masks[r.index] > 0) for r in fwd]
    assert min(ious) > 0.7, ious
    bwd = list(propagate(frames.__getitem__, 9, -1, {9: FrameLabels(mask=masks[9])}, {}, enc, cfg))
    assert [r.index for r in bwd] == list(range(8, -1, -1))
    assert min(jaccard(r.labels.mask > 0, masks[r.index] > 0) for r in bwd) > 0.7
    # Copying frame 0's mask everywhere would be much worse: the propagator really tracks.
    assert np.mean(ious) > np.mean([jaccard(masks[0] > 0, m > 0) for m in masks[1:]]) + 0.3


def test_propagation_keeps_object_ids_and_keypoints_follow_the_square():
    frames, masks = make_moving_square_frames(n=8, h=64, w=96)
    two = masks[0].copy()
    two[(masks[0] > 0)] = 7
    ys, xs = np.nonzero(masks[0])
    centre = np.array([[xs.mean(), ys.mean(), 1.0]], np.float32)
    refs = {0: FrameLabels(mask=two, keypoints={2: centre})}
    cfg = PropagationConfig(radius=3, keyframe_radius=4, tile=4)
    out = list(propagate(frames.__getitem__, 0, 8, refs, {2: 1}, LabEncoder(stride=4), cfg))
    last = out[-1]
    assert set(np.unique(last.labels.mask)) == {0, 7}
    ys, xs = np.nonzero(masks[7])
    x, y, vis = last.labels.keypoints[2][0]
    assert vis == 1.0
    assert abs(x - xs.mean()) < 6 and abs(y - ys.mean()) < 6
    assert all(0.0 <= r.confidence <= 1.0 for r in out)


def test_work_size_scales_only_frames_taller_than_the_limit():
    assert work_size((480, 854), 480) == (480, 854)
    assert work_size((1080, 1920), 480) == (480, 853)
    assert work_size((720, 1280), 480) == (480, 853)
    assert work_size((1080, 1920), 0) == (1080, 1920)
    with pytest.raises(ValueError):
        PropagationConfig(max_work_height=-1)


def _square_run(frames, masks, max_work_height):
    ys, xs = np.nonzero(masks[0])
    centre = np.array([[xs.mean(), ys.mean(), 1.0]], np.float32)
    refs = {0: FrameLabels(mask=masks[0], keypoints={2: centre})}
    # top3 decoding: this checks the geometry of the work-size path; the soft-argmax "peak"
    # decoding wanders inside the square's flat heat (6.8 px apart between the two sizes);
    # no region localisation either: its integer window offsets come from rounded centroids,
    # which the resampled big clip can round the other way (a 1-cell different window)
    cfg = PropagationConfig(
        radius=3,
        keyframe_radius=4,
        tile=4,
        max_work_height=max_work_height,
        keypoint_decode="top3",
        region_localise=False,
    )
    n = len(frames)
    return list(propagate(frames.__getitem__, 0, n, refs, {2: 1}, LabEncoder(stride=4), cfg))


def test_a_frame_no_taller_than_the_work_height_is_matched_as_before():
    frames, masks = make_moving_square_frames(n=5, h=64, w=96)
    full = _square_run(frames, masks, 0)
    for limit in (64, 480):
        same = _square_run(frames, masks, limit)
        for a, b in zip(full, same):
            assert torch.equal(a.soft, b.soft)
            assert np.array_equal(a.labels.mask, b.labels.mask)
            assert np.array_equal(a.labels.keypoints[2], b.labels.keypoints[2], equal_nan=True)


def test_a_tall_frame_is_matched_downscaled_and_decoded_at_full_size():
    small, small_masks = make_moving_square_frames(n=10, h=64, w=96)
    big = [cv2.resize(f, (192, 128), interpolation=cv2.INTER_CUBIC) for f in small]
    big_masks = [cv2.resize(m, (192, 128), interpolation=cv2.INTER_NEAREST) for m in small_masks]
    ref = _square_run(small, small_masks, 0)
    out = _square_run(big, big_masks, 64)  # matched on a 64 x 96 grid like the small clip
    assert [r.soft.shape for r in out] == [r.soft.shape for r in ref]
    for r, s in zip(out, ref):
        assert r.labels.mask.shape == (128, 192)
        j_big = jaccard(r.labels.mask > 0, big_masks[r.index] > 0)
        assert j_big > 0.7
        assert j_big > jaccard(s.labels.mask > 0, small_masks[s.index] > 0) - 0.05
        # the same grid labels as the small clip's run, decoded at twice the size
        assert float((r.soft - s.soft).abs().mean()) < 0.01
        (x, y, vis), (sx, sy, svis) = r.labels.keypoints[2][0], s.labels.keypoints[2][0]
        assert vis == svis
        assert abs(x - (2 * sx + 0.5)) < 2 and abs(y - (2 * sy + 0.5)) < 2


def test_propagate_rejects_missing_start_labels_and_bad_config():
    frames, masks = make_moving_square_frames(n=3)
    with pytest.raises(ValueError, match="start frame"):
        next(propagate(frames.__getitem__, 1, 3, {0: FrameLabels(mask=masks[0])}, {}, LabEncoder()))
    with pytest.raises(ValueError):
        PropagationConfig(temperature=0)


def test_guided_refinement_snaps_a_coarse_boundary_to_the_image_edge():
    h, w, stride = 32, 64, 8
    frame = np.zeros((h, w, 3), np.uint8)
    frame[:, 27:] = 255  # the true object edge is at column 27, inside a grid cell
    truth = np.zeros((h, w), np.uint8)
    truth[:, 27:] = 1
    soft = mask_to_soft(truth, (1,), grid_size(h, w, stride))
    coarse = soft_to_mask(soft, (1,), (h, w), stride)
    refined = soft_to_mask(soft, (1,), (h, w), stride, frame=frame, refine_radius=4)
    assert jaccard(refined > 0, truth > 0) > jaccard(coarse > 0, truth > 0)
    assert jaccard(refined > 0, truth > 0) > 0.97
    fast = soft_to_mask(
        soft, (1,), (h, w), stride, frame=frame, refine_radius=4, refine_subsample=2
    )
    assert jaccard(fast > 0, truth > 0) > 0.97


def test_the_subsampled_guided_filter_approximates_the_exact_one_and_keeps_constants():
    rng = np.random.default_rng(0)
    _, x = np.mgrid[0:61, 0:83].astype(np.float32)
    guide = (
        (x > 40).astype(np.float32) * 0.8 + 0.1 + rng.normal(0, 0.02, x.shape).astype(np.float32)
    )
    plane = np.clip((x - 30) / 20, 0, 1).astype(np.float32)[None]  # a soft edge near the step
    exact = guided_filter(guide, plane, 4, 1e-3)
    fast = guided_filter(guide, plane, 4, 1e-3, subsample=2)
    assert fast.shape == exact.shape == plane.shape
    assert np.abs(fast - exact).mean() < 0.02
    assert ((fast > 0.5) == (exact > 0.5)).mean() > 0.99
    const = np.full((2, 61, 83), 0.25, np.float32)
    assert np.allclose(guided_filter(guide, const, 4, 1e-3, subsample=2), 0.25, atol=1e-5)


def test_confidence_drops_when_an_object_vanishes():
    start = torch.zeros(2, 8, 8)
    start[0] = 1
    start[:, 2:6, 2:6] = torch.tensor([0.0, 1.0])[:, None, None]  # 16 cells of object
    start_area = start[1:].flatten(1).sum(dim=1)
    lost = torch.zeros(2, 8, 8)
    lost[0] = 1
    shrunk = lost.clone()
    shrunk[:, 3:4, 3:5] = torch.tensor([0.0, 1.0])[:, None, None]  # 2 cells: 1/8 of the start
    assert mask_confidence(start, start_area) > 0.95
    assert mask_confidence(lost, start_area) == 0.0
    assert mask_confidence(shrunk, start_area) == pytest.approx(0.5)


def test_learned_encoder_input_matches_the_training_normalisation():
    from tracker_core.encoder import lab_image
    from tracker_core.nets import frames_to_input, lab_to_input

    frames, _ = make_moving_square_frames(n=1, h=32, w=48)
    fast = lab_to_input(torch.from_numpy(lab_image(frames[0])).permute(2, 0, 1)[None])
    assert torch.allclose(fast, frames_to_input(frames[0][None]), atol=0.01)


@pytest.mark.parametrize("precision", ["fp32", "bf16", "auto"])
def test_learned_encoder_precisions_give_the_same_unit_features(precision):
    from tracker_core.encoder import LearnedEncoder
    from tracker_core.nets import NetConfig, TrackNet, build_net

    torch.manual_seed(0)
    net = build_net(TrackNet.arch, NetConfig().to_dict())
    frames, _ = make_moving_square_frames(n=1, h=64, w=96)
    ref = LearnedEncoder(net, precision="fp32").encode(frames[0])
    enc = LearnedEncoder(net, precision=precision)
    out = enc.encode(frames[0])
    assert enc.precision in ("fp32", "bf16")
    assert out.shape == ref.shape == (64, 8, 12)
    assert torch.nn.functional.cosine_similarity(out, ref, dim=0).min() > 0.99


# --------------------------------------------------------------------------- region localisation


def _fast_paths(width: int) -> list[int]:
    """x of a 16 px square speeding up to 4 cells (stride 4) per frame: past radius 2."""
    xs = [4]
    for step in (4, 8, 12, 16, 16, 16, 16, 16):
        xs.append(xs[-1] + step)
    assert xs[-1] + 16 <= width
    return xs


def _track(frames, masks, localise: bool, refs=None, num_keypoints=None):
    cfg = PropagationConfig(radius=2, keyframe_radius=2, tile=4, region_localise=localise)
    refs = refs or {0: FrameLabels(mask=masks[0])}
    enc = LabEncoder(stride=4)
    return list(propagate(frames.__getitem__, 0, len(frames), refs, num_keypoints or {}, enc, cfg))


def test_localised_windows_follow_a_square_faster_than_the_radius():
    xs = _fast_paths(160)
    frames, masks = make_square_path_frames([[(x, 24) for x in xs]], 64, 160)
    lost = [jaccard(r.labels.mask == 1, masks[r.index] == 1) for r in _track(frames, masks, False)]
    kept = [jaccard(r.labels.mask == 1, masks[r.index] == 1) for r in _track(frames, masks, True)]
    assert lost[-1] < 0.1, lost  # the window (2 cells) cannot reach a 4-cell step
    assert min(kept) > 0.7, kept


def test_localisation_moves_each_object_by_its_own_offset_and_leaves_others_exact():
    xs, width = _fast_paths(160), 160
    paths = [[(x, 4) for x in xs], [(width - 16 - x, 44) for x in xs], [(72, 84)] * len(xs)]
    frames, masks = make_square_path_frames(paths, 104, width)
    plain, local = _track(frames, masks, False), _track(frames, masks, True)
    for obj in (1, 2):  # opposite directions: one global shift could not follow both
        assert jaccard(plain[-1].labels.mask == obj, masks[-1] == obj) < 0.1
        kept = [jaccard(r.labels.mask == obj, masks[r.index] == obj) for r in local]
        assert min(kept) > 0.5, (obj, kept)
    # the still object is matched exactly as without localisation
    for a, b in zip(plain, local):
        assert torch.equal(a.soft[3], b.soft[3])


def test_localisation_changes_nothing_when_objects_do_not_move_or_there_are_none():
    frames, masks = make_moving_square_frames(n=1, h=64, w=96)
    still, still_masks = frames * 6, masks * 6
    for a, b in zip(_track(still, still_masks, False), _track(still, still_masks, True)):
        assert torch.equal(a.soft, b.soft)
        assert np.array_equal(a.labels.mask, b.labels.mask)
    moving, moving_masks = make_moving_square_frames(n=6, h=64, w=96)
    ys, xs = np.nonzero(moving_masks[0])
    point = np.array([[xs.mean(), ys.mean(), 1.0]], np.float32)
    refs = {0: FrameLabels(keypoints={2: point})}  # keypoints only: no mask object to localise
    plain = _track(moving, moving_masks, False, refs, {2: 1})
    local = _track(moving, moving_masks, True, refs, {2: 1})
    for a, b in zip(plain, local):
        assert torch.equal(a.soft, b.soft)


def random_query_and_frame(
    seed: int, c: int, k: int, h: int, w: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Seeded (C, h, w) query features, (C, h, w) reference features and (K, h, w) soft labels."""
    gen = torch.Generator().manual_seed(seed)
    query = torch.randn(c, h, w, generator=gen)
    feats = torch.randn(c, h, w, generator=gen)
    labels = torch.softmax(torch.randn(k, h, w, generator=gen) * 3, dim=0)
    return query, feats, labels


@pytest.mark.parametrize("offset", [(0, 0), (2, -3), (-5, 1), (12, 0)])
def test_translated_reference_matches_dense_windows_centred_off_the_query(offset):
    h, w, c, k, r, tile = 11, 14, 5, 3, 2, 4
    query, feats, labels = random_query_and_frame(1, c, k, h, w)
    ref = make_reference(feats, labels, r, tile, offset)
    if offset == (0, 0):  # no offset: the reference of the old code, bit for bit
        old = make_reference(feats, labels, r, tile)
        assert all(torch.equal(getattr(ref, f), getattr(old, f)) for f in ("keys", "values"))
    # dense: the frame translated by the offset, cells from outside never candidates
    shifted = translate(feats, offset)
    valid = translate(torch.ones(1, h, w), offset)[0] > 0
    out = local_affinity_copy(query, [ref], 4, 0.3)
    for y in range(h):
        for x in range(w):
            y0, y1, x0, x1 = max(0, y - r), min(h, y + r + 1), max(0, x - r), min(w, x + r + 1)
            ok = valid[y0:y1, x0:x1].reshape(-1)
            if not ok.any():
                continue
            f = shifted[:, y0:y1, x0:x1].reshape(c, -1)[:, ok]
            lab = translate(labels, offset)[:, y0:y1, x0:x1].reshape(k, -1)[:, ok]
            s = f.T @ query[:, y, x] - 0.5 * (f * f).sum(0)
            top, idx = s.topk(min(4, len(s)))
            want = (lab[:, idx] * torch.softmax(top / 0.3, 0)).sum(1)
            assert torch.allclose(out[:, y, x], want, atol=1e-5)


def test_per_tile_reference_sets_equal_each_set_alone():
    h, w, c, k, tile = 12, 16, 4, 2, 4
    query, feats, labels = random_query_and_frame(2, c, k, h, w)
    base = [make_reference(feats, labels, 2, tile), make_reference(feats, labels, 3, tile)]
    moved = [
        make_reference(feats, labels, 2, tile, (1, 2)),
        make_reference(feats, labels, 3, tile, (-2, 0)),
    ]
    region = torch.tensor([0, 1, 1, 0, 1, 0, 0, 1, 0, 0, 1, 1])
    mixed = local_affinity_copy(query, base, 3, 0.2, regions=[moved], tile_region=region)
    a = local_affinity_copy(query, base, 3, 0.2)
    b = local_affinity_copy(query, moved, 3, 0.2)
    pick = region.view(3, 4).repeat_interleave(tile, 0).repeat_interleave(tile, 1).bool()
    assert torch.equal(mixed, torch.where(pick, b, a))
    zero = local_affinity_copy(query, base, 3, 0.2, regions=[moved], tile_region=region * 0)
    assert torch.equal(zero, a)


def test_region_helpers_centroids_prediction_tiles_and_clamping():
    soft = torch.zeros(3, 8, 8)
    soft[0] = 1
    soft[:, 1:3, 4:6] = torch.tensor([0.0, 1.0, 0.0])[:, None, None]
    cents = object_centroids(soft)
    assert torch.allclose(cents[0], torch.tensor([1.5, 4.5], dtype=torch.float64))
    assert torch.isnan(cents[1]).all()  # absent object
    later = torch.tensor([[2.5, 6.5], [math.nan, math.nan]], dtype=torch.float64)
    pred = predict_centroids([cents, later], 1.0)
    assert torch.allclose(pred[0], torch.tensor([3.5, 8.5], dtype=torch.float64))
    assert torch.allclose(predict_centroids([cents], 1.0)[0], cents[0])
    tiles = region_tiles(soft[1:], tile=4, margin=0)
    assert tiles.tolist() == [0, 1, 0, 0]
    assert region_tiles(soft[1:], tile=4, margin=1).tolist() == [1, 1, 0, 0]
    # a window of every query cell keeps a cell on the grid
    assert clamp_offset((40, -40), (0, 4, 4, 8), (8, 8), 2) == (2, -2)
    assert clamp_offset((1, 1), (0, 4, 4, 8), (8, 8), 2) == (1, 1)
    # offsets: shrunk by the slack, (0, 0) for an absent object, clamped to the object's tiles
    raw = window_offsets(pred, [cents, later], [2, 4], slack=0.5)
    assert raw == [[(1, 3), (0, 0)], [(0, 0), (0, 0)]]
    assert region_offsets(raw, [2, 4], tiles, 4, (8, 8)) == [[(1, 3), (0, 0)], [(0, 0), (0, 0)]]
    far = [[(40, -40), (0, 0)], [(5, 5), (0, 0)]]  # object 2 has no tile: its windows stay
    assert region_offsets(far, [2, 4], tiles, 4, (8, 8)) == [[(2, -2), (0, 0)], [(0, 0), (0, 0)]]


@pytest.mark.parametrize(
    ("offset", "box"), [((0, 0), (0, 3, 0, 4)), ((2, -3), (1, 3, 1, 3)), ((-6, 5), (0, 2, 2, 4))]
)
def test_a_box_reference_gives_the_windows_of_the_whole_translated_reference(offset, box):
    h, w, c, k, r, tile = 12, 15, 4, 3, 3, 4
    query, feats, labels = random_query_and_frame(3, c, k, h, w)
    whole = make_reference(feats, labels, r, tile, offset)
    part = box_reference(feats, labels, r, tile, offset, box)
    if box == (0, 3, 0, 4) and offset == (0, 0):
        assert torch.equal(part.keys, whole.keys) and torch.equal(part.values, whole.values)
    region = torch.zeros(3, 4, dtype=torch.long)
    region[box[0] : box[1], box[2] : box[3]] = 1
    base = [make_reference(feats, labels, r, tile)]
    want = local_affinity_copy(query, base, 3, 0.2, regions=[[whole]], tile_region=region.flatten())
    got = local_affinity_copy(query, base, 3, 0.2, regions=[[part]], tile_region=region.flatten())
    assert torch.equal(got, want)
    inside = region.flatten().bool()
    assert torch.equal(part.lo[inside], whole.lo[inside]) and torch.equal(
        part.hi[inside], whole.hi[inside]
    )


def test_mixed_region_runs_equal_per_region_runs(monkeypatch):
    """One run holding tiles of several reference sets (whole and box references of different
    offsets, alternating within tile rows) gives the labels of scoring each tile alone."""
    import tracker_core.propagate as prop

    gen = torch.Generator().manual_seed(4)
    h, w, c, k, tile = 12, 22, 4, 3, 4
    query = torch.randn(c, h, w, generator=gen)
    feats = [torch.randn(c, h, w, generator=gen) for _ in range(2)]
    labels = [torch.softmax(torch.randn(k, h, w, generator=gen) * 3, dim=0) for _ in range(2)]
    radii = (2, 3)
    base = [make_reference(f, lab, r, tile) for f, lab, r in zip(feats, labels, radii)]
    region = torch.tensor([[0, 1, 1, 2, 2, 0], [1, 2, 0, 1, 2, 2], [2, 2, 1, 1, 0, 1]])
    sets = []
    for g, offs in ((1, [(1, 2), (-2, 0)]), (2, [(0, -3), (3, 1)])):
        own = torch.nonzero(region.flatten() == g).flatten()
        box = prop.tile_box(own, 6)
        sets.append(
            [
                box_reference(f, lab, r, tile, o, box)
                for f, lab, r, o in zip(feats, labels, radii, offs)
            ]
        )
    pieces = []
    run_copy = prop._copy_run

    def counting(q, refs, parts, topk, temperature):
        pieces.append(len(parts))
        return run_copy(q, refs, parts, topk, temperature)

    monkeypatch.setattr(prop, "_copy_run", counting)
    mixed = local_affinity_copy(query, base, 3, 0.2, regions=sets, tile_region=region.flatten())
    assert max(pieces) >= 3  # runs did hold tiles of every set
    pieces.clear()
    alone = local_affinity_copy(
        query, base, 3, 0.2, run=1, regions=sets, tile_region=region.flatten()
    )
    assert max(pieces) == 1
    assert torch.equal(mixed, alone)
    # and each tile took its own set's labels (whole translated frames, tile by tile)
    whole = [
        [make_reference(f, lab, r, tile, o) for f, lab, r, o in zip(feats, labels, radii, offs)]
        for offs in ([(1, 2), (-2, 0)], [(0, -3), (3, 1)])
    ]
    want = local_affinity_copy(
        query, base, 3, 0.2, run=1, regions=whole, tile_region=region.flatten()
    )
    assert torch.equal(mixed, want)
