"""The propagator seam: one shared test every registered propagator and preset passes, the
registry and presets, the bounded feature cache, and encoder placement / ONNX graphs."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.fixtures_video import make_moving_square_frames
from tracker_core.encoder import LabEncoder, LearnedEncoder
from tracker_core.evaluate import jaccard
from tracker_core.labels import FrameLabels
from tracker_core.nets import NetConfig, TrackNet, build_net, save_net
from tracker_core.propagate import FeatureCache, PropagatedFrame, PropagationConfig
from tracker_core.propagator import (
    DEFAULT_PRESET,
    PRESETS,
    PROPAGATORS,
    Propagator,
    load_propagator,
    preset_config,
)


class CountingLab(LabEncoder):
    """The Lab encoder at stride 4, counting the frames it encodes."""

    def __init__(self) -> None:
        super().__init__(stride=4)
        object.__setattr__(self, "calls", [])

    def encode(self, frame: np.ndarray) -> torch.Tensor:
        self.calls.append(int(frame[0, 0, 0]))  # the fixture draws the frame index in pixel (0,0)
        return super().encode(frame)


def numbered_frames(n: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    frames, masks = make_moving_square_frames(n=n, h=64, w=96)
    for i, f in enumerate(frames):
        f[0, 0] = i
    return frames, masks


@pytest.mark.parametrize("kind", sorted(PROPAGATORS))
@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_propagator_and_preset_tracks_caches_and_reports_warmup(kind, preset):
    frames, masks = numbered_frames(10)
    enc = CountingLab()
    prop = load_propagator(preset, encoder=enc, kind=kind)
    assert isinstance(prop, Propagator)
    assert prop.name == preset and prop.encoder is enc and prop.config == PRESETS[preset]
    refs = {0: FrameLabels(mask=masks[0]), 6: FrameLabels(mask=masks[6])}
    cache = prop.new_cache()
    warmup = []
    out = list(
        prop.propagate(frames.__getitem__, 0, 6, refs, {}, cache=cache, on_warmup=warmup.append)
    )
    assert [r.index for r in out] == [1, 2, 3, 4, 5]
    assert all(isinstance(r, PropagatedFrame) and 0 <= r.confidence <= 1 for r in out)
    assert min(jaccard(r.labels.mask > 0, masks[r.index] > 0) for r in out) > 0.7
    assert all(r.seconds > 0 for r in out)
    # warm-up: the start frame and the other keyframe are encoded before the first result
    assert [(w.done, w.total) for w in warmup] == [(1, 2), (2, 2)]
    assert warmup[-1].message == "encoding keyframes 2/2"
    assert sorted(enc.calls) == [0, 1, 2, 3, 4, 5, 6]
    # a resume from a corrected frame 3 re-encodes nothing the cache holds
    enc.calls.clear()
    refs[3] = FrameLabels(mask=masks[3])
    again = list(prop.propagate(frames.__getitem__, 3, 6, refs, {}, cache=cache))
    assert [r.index for r in again] == [4, 5] and enc.calls == []
    # backward and cancellation
    back = prop.propagate(frames.__getitem__, 6, -1, refs, {}, cache=cache)
    assert next(back).index == 5
    back.close()


def test_registry_presets_and_overrides():
    assert DEFAULT_PRESET == "fast" and set(PRESETS) == {"fast", "accurate"}
    assert PRESETS["accurate"].n_recent > PRESETS["fast"].n_recent
    assert preset_config("fast", {"radius": 3}) == dataclasses.replace(PRESETS["fast"], radius=3)
    with pytest.raises(ValueError, match="unknown preset"):
        load_propagator("turbo", encoder=LabEncoder())
    with pytest.raises(ValueError, match="unknown propagation settings"):
        preset_config("fast", {"radius_px": 3})
    with pytest.raises(ValueError, match="unknown propagator"):
        load_propagator("fast", encoder=LabEncoder(), kind="optical-flow")
    assert load_propagator(encoder=LabEncoder()).config == PropagationConfig()


def test_feature_cache_is_bounded_and_evicts_what_the_run_has_passed():
    one = torch.zeros(4, 8, 8)  # 1 KiB
    cache = FeatureCache(max_bytes=3 * one.nbytes)
    for i in range(3):
        cache.put(i, one, position=i, step=1)
    cache.put(3, one, position=3, step=1)  # full: frame 0 (farthest behind) goes
    assert cache.get(0) is None and cache.get(3) is not None and cache.nbytes <= cache.max_bytes
    # a new run backwards from 1: frames ahead of it (1, 0) are kept over those behind (2, 3)
    cache.put(0, one, position=1, step=-1)
    assert cache.get(3) is None and cache.get(0) is not None and cache.get(1) is not None
    assert len(cache) == 3 and cache.hits == 3 and cache.misses == 2
    FeatureCache(0).put(0, one, 0, 1)  # too small to hold anything: no error


def tiny_checkpoint(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    net = build_net(TrackNet.arch, NetConfig(widths=(8, 8, 16), blocks=(0, 0, 1), dim=8).to_dict())
    path = tmp_path / "tiny.pt"
    save_net(path, net, {"lab_weight": 8.0})
    return path


def test_encoder_runtimes_agree_and_the_onnx_graph_is_exported_once(tmp_path, monkeypatch):
    from tracker_core import runtime
    from tracker_core.encoder import load_encoder

    frames, _ = make_moving_square_frames(n=1, h=64, w=96)
    path = tiny_checkpoint(tmp_path)
    ref = load_encoder(path, runtime="torch", precision="fp32")
    assert ref.placement == runtime.Placement("torch", "cpu", "fp32")
    onnx = load_encoder(path, precision="fp32")
    assert onnx.placement == runtime.Placement("onnx", "cpu", "fp32")
    a, b = ref.encode(frames[0]), onnx.encode(frames[0])
    assert a.shape == b.shape == (11, 8, 12)
    assert torch.allclose(a, b, atol=1e-4)
    cached = list((runtime.cache_dir() / "onnx").glob("*.onnx"))
    assert [p.stem for p in cached] == [runtime.weights_hash(ref.net)]
    # a second encoder finds the cached graph and exports nothing
    monkeypatch.setattr(runtime, "export_onnx", lambda *a: pytest.fail("exported again"))
    assert torch.allclose(load_encoder(path, precision="fp32").encode(frames[0]), b)
    # int8 without a shipped quantised graph falls back to fp32
    q = load_encoder(path, precision="int8")
    assert torch.allclose(q.encode(frames[0]), b) and q.precision == "fp32"


def test_an_onnx_encoder_keeps_one_session_per_thread_count(tmp_path):
    """Propagation encodes ahead on half of torch's threads: that gets a session of its own,
    made once, giving the same features."""
    from tracker_core import runtime
    from tracker_core.encoder import load_encoder

    frames, _ = make_moving_square_frames(n=1, h=64, w=96)
    enc = load_encoder(tiny_checkpoint(tmp_path), precision="fp32")
    assert enc.placement == runtime.Placement("onnx", "cpu", "fp32")
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        two = enc.encode(frames[0])
        torch.set_num_threads(1)
        one = enc.encode(frames[0])
        session = enc._sessions[1]
        enc.encode(frames[0])
        assert enc._sessions[1] is session and sorted(enc._sessions) == [1, 2]
        assert torch.allclose(one, two, atol=1e-5)
    finally:
        torch.set_num_threads(before)


def test_placement_follows_the_cpu_capabilities(monkeypatch):
    from tracker_core import runtime

    monkeypatch.setattr(runtime, "auto_device", lambda: "cpu")
    monkeypatch.setattr(runtime, "cpu_flags", lambda: frozenset({"avx2", "fma"}))
    assert runtime.choose_placement() == runtime.Placement("onnx", "cpu", "fp32")
    assert runtime.choose_placement(runtime="torch").precision == "fp32"
    monkeypatch.setattr(runtime, "cpu_flags", lambda: frozenset({"avx512f", "avx512_bf16"}))
    assert runtime.choose_placement() == runtime.Placement("torch", "cpu", "bf16")
    assert runtime.choose_placement(precision="fp32") == runtime.Placement("onnx", "cpu", "fp32")
    monkeypatch.setattr(runtime, "onnxruntime_available", lambda: False)
    assert runtime.choose_placement(precision="fp32").runtime == "torch"
    monkeypatch.setattr(runtime, "auto_device", lambda: "cuda")
    assert runtime.choose_placement() == runtime.Placement("torch", "cuda", "fp32")
    with pytest.raises(ValueError):
        runtime.choose_placement(precision="fp8")


def test_no_encoder_times_code_paths_at_start_up():
    assert not hasattr(LearnedEncoder, "_faster_precision")
