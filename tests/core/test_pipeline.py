"""Propagation's load-ahead worker (frame t+1 decoded and encoded while t is matched) and the
start frame's feature basis: same results, threads restored, errors where they happened."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from tests.fixtures_video import make_moving_square_frames
from tracker_core.encoder import LabEncoder
from tracker_core.labels import FrameLabels
from tracker_core.pipeline import LoadAhead, SharedWork
from tracker_core.propagate import PropagationConfig, feature_basis, propagate


class RecordingEncoder:
    """Lab features plus ``extra`` derived channels (a learned-size feature map), recording
    which thread encoded each frame."""

    def __init__(self, extra: int = 0) -> None:
        self._lab = LabEncoder(stride=4)
        self.stride = 4
        self.extra = extra
        self.threads: list[str] = []

    def encode(self, frame: np.ndarray) -> torch.Tensor:
        self.threads.append(threading.current_thread().name)
        lab = self._lab.encode(frame)
        if not self.extra:
            return lab
        mix = torch.linspace(-1, 1, self.extra * 3).view(self.extra, 3)
        return torch.cat([lab, torch.tanh(torch.einsum("kc,chw->khw", mix, lab))])


def _run(frames, masks, enc, **cfg):
    config = PropagationConfig(radius=3, keyframe_radius=4, tile=4, **cfg)
    refs = {0: FrameLabels(mask=masks[0])}
    return list(propagate(frames.__getitem__, 0, len(frames), refs, {}, enc, config))


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_encoding_ahead_gives_the_same_labels_on_a_worker_thread(two_threads):
    frames, masks = make_moving_square_frames(n=8, h=64, w=96)
    inline_enc, ahead_enc = RecordingEncoder(), RecordingEncoder()
    inline = _run(frames, masks, inline_enc, encode_ahead=False)
    ahead = _run(frames, masks, ahead_enc, encode_ahead=True)
    assert [r.index for r in ahead] == [r.index for r in inline] == list(range(1, 8))
    for a, b in zip(ahead, inline):
        assert np.array_equal(a.labels.mask, b.labels.mask)
        assert torch.equal(a.soft, b.soft)
    main = threading.current_thread().name
    assert set(inline_enc.threads) == {main}
    # the start frame and frame 1 inline (first result as fast as before), the rest ahead
    assert ahead_enc.threads[:2] == [main, main]
    assert all(t.startswith("trackpaint-load") for t in ahead_enc.threads[2:])
    assert len(ahead_enc.threads) == len(frames)
    assert torch.get_num_threads() == 2


def test_closing_a_run_early_stops_the_worker_and_restores_the_threads(two_threads):
    frames, masks = make_moving_square_frames(n=10, h=64, w=96)
    enc = RecordingEncoder()
    refs = {0: FrameLabels(mask=masks[0])}
    config = PropagationConfig(radius=3, keyframe_radius=4, tile=4)
    run = propagate(frames.__getitem__, 0, len(frames), refs, {}, enc, config)
    next(run)
    next(run)
    assert torch.get_num_threads() == 1  # matching on half of the threads while loading ahead
    run.close()
    assert torch.get_num_threads() == 2
    assert not any(t.name.startswith("trackpaint-load") for t in threading.enumerate())
    assert len(enc.threads) <= 5  # start, 1, 2 and at most the two loaded ahead (of 10)


def test_a_frame_that_fails_to_load_ahead_raises_after_the_frames_before_it(two_threads):
    frames, masks = make_moving_square_frames(n=8, h=64, w=96)

    def frame(i: int) -> np.ndarray:
        if i == 5:
            raise OSError("frame 5: bad data")
        return frames[i]

    refs = {0: FrameLabels(mask=masks[0])}
    config = PropagationConfig(radius=3, keyframe_radius=4, tile=4)
    seen = []
    with pytest.raises(OSError, match="frame 5"):
        for r in propagate(frame, 0, 8, refs, {}, RecordingEncoder(), config):
            seen.append(r.index)
    assert seen == [1, 2, 3, 4]
    assert torch.get_num_threads() == 2


def test_load_ahead_runs_inline_with_one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        names = []
        ahead = LoadAhead(lambda i: names.append(threading.current_thread().name) or i, range(4))
        assert [ahead.get(i) for i in range(4)] == [0, 1, 2, 3]
        ahead.close()
        assert set(names) == {threading.current_thread().name}
    finally:
        torch.set_num_threads(before)


def test_feature_basis_keeps_the_dot_products_of_features_in_its_span():
    gen = torch.Generator().manual_seed(0)
    low = torch.randn(5, 9, 11, generator=gen)  # features living in a 5-d subspace of 12
    mix = torch.linalg.qr(torch.randn(12, 5, generator=gen))[0]
    feats = torch.einsum("ck,khw->chw", mix, low)
    basis = feature_basis(feats, 5)
    assert basis.shape == (5, 12)
    assert torch.allclose(basis @ basis.T, torch.eye(5), atol=1e-5)
    flat = feats.flatten(1)
    proj = basis @ flat
    assert torch.allclose(proj.T @ proj, flat.T @ flat, atol=1e-3)
    # fewer dimensions keep the largest directions: the projection error is the smallest ones
    two = feature_basis(feats, 2)
    err = (flat - two.T @ (two @ flat)).pow(2).sum()
    eig = torch.linalg.eigvalsh((flat @ flat.T).double())
    assert torch.isclose(err.double(), eig[:-2].sum(), rtol=1e-3)
    assert feature_basis(feats, 0) is None
    assert feature_basis(feats, 12) is None


def test_projected_features_track_the_square_like_the_full_ones():
    frames, masks = make_moving_square_frames(n=8, h=64, w=96)
    full = _run(frames, masks, RecordingEncoder(extra=9), feature_dims=0)
    low = _run(frames, masks, RecordingEncoder(extra=9), feature_dims=4)
    assert full[0].soft.shape == low[0].soft.shape

    def iou(a, b):
        return (a & b).sum() / max(1, (a | b).sum())

    for f, lo, gt in zip(full, low, masks[1:]):
        assert iou(lo.labels.mask > 0, gt > 0) > iou(f.labels.mask > 0, gt > 0) - 0.1
        assert iou(lo.labels.mask > 0, gt > 0) > 0.7


def test_shared_work_gives_every_result_in_order_with_a_helper_joining_in():
    who: dict[int, str] = {}

    def compute(i: int) -> int:
        who[i] = threading.current_thread().name
        time.sleep(0.002)
        return i * i

    work = SharedWork(40, compute)
    helper = threading.Thread(target=work.help, name="helper")
    helper.start()
    assert work.run() == [i * i for i in range(40)]
    helper.join()
    assert set(who.values()) == {threading.current_thread().name, "helper"}
    assert not work.unclaimed


def test_shared_work_never_waits_for_a_helper_that_has_not_started():
    work = SharedWork(5, lambda i: -i)
    assert work.run() == [0, -1, -2, -3, -4]  # nobody helped: all done by the owner
    work.help()  # a helper that arrives late finds nothing left and returns at once


def test_a_helpers_error_is_raised_by_the_owner():
    def compute(i: int) -> int:
        if threading.current_thread().name == "helper":
            raise ValueError(f"item {i} failed")
        time.sleep(0.005)
        return i

    work = SharedWork(20, compute)
    helper = threading.Thread(target=work.help, name="helper")
    helper.start()
    with pytest.raises(ValueError, match="failed"):
        work.run()
    helper.join()


def test_the_loading_thread_helps_with_matching_and_the_labels_stay_the_same(
    two_threads, monkeypatch
):
    import tracker_core.propagate as prop

    frames, masks = make_moving_square_frames(n=8, h=64, w=96)
    alone = _run(frames, masks, RecordingEncoder(), split_matching=False)
    threads: list[str] = []
    copy_run = prop._copy_run

    def slow_copy_run(*a, **k):  # slow enough that the loader finishes and joins in
        threads.append(threading.current_thread().name)
        time.sleep(0.003)
        return copy_run(*a, **k)

    monkeypatch.setattr(prop, "_copy_run", slow_copy_run)
    shared = _run(frames, masks, RecordingEncoder(), split_matching=True)
    for a, b in zip(shared, alone):
        assert np.array_equal(a.labels.mask, b.labels.mask)
        assert torch.equal(a.soft, b.soft)
    assert threading.current_thread().name in threads
    assert any(t.startswith("trackpaint-load") for t in threads)
    assert torch.get_num_threads() == 2
