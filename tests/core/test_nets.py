"""Tests for tracker_core.nets: input normalisation, output shapes, checkpoint round trip."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from skimage.color import rgb2lab

from tracker_core.errors import ModelError
from tracker_core.nets import NetConfig, TrackNet, frames_to_input, load_net, save_net

TINY = NetConfig(widths=(8, 8, 16), blocks=(0, 0, 1), dim=8)


def test_frames_to_input_matches_skimage_lab() -> None:
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(2, 5, 7, 3), dtype=np.uint8)
    x = frames_to_input(frames)
    assert x.shape == (2, 3, 5, 7) and x.dtype == torch.float32
    lab = rgb2lab(frames[0])
    np.testing.assert_allclose(x[0, 0].numpy(), lab[..., 0] / 50 - 1, atol=2e-3)
    np.testing.assert_allclose(x[0, 1].numpy(), lab[..., 1] / 110, atol=2e-3)
    np.testing.assert_allclose(x[0, 2].numpy(), lab[..., 2] / 110, atol=2e-3)
    assert torch.equal(frames_to_input(torch.from_numpy(frames)), x)


@pytest.mark.parametrize("bad", [np.zeros((4, 4, 3), np.uint8), np.zeros((1, 4, 4, 3), np.float32)])
def test_frames_to_input_rejects_bad_input(bad: np.ndarray) -> None:
    with pytest.raises(ValueError):
        frames_to_input(bad)


@pytest.mark.parametrize(("h", "w"), [(64, 64), (61, 90), (33, 17)])
def test_output_shape_and_stride(h: int, w: int) -> None:
    net = TrackNet(TINY).eval()
    assert net.stride == 8 and net.dim == 8
    with torch.no_grad():
        y = net(torch.zeros(2, 3, h, w))
    assert y.shape == (2, 8, -(-h // 8), -(-w // 8))


def test_default_config_is_stride_8() -> None:
    net = TrackNet()
    assert net.stride == 8 and net.dim == NetConfig().dim


def test_save_load_round_trip(tmp_path) -> None:
    torch.manual_seed(0)
    net = TrackNet(TINY)
    net.train()
    net(torch.randn(2, 3, 32, 32))  # move BN running stats away from their init
    net.eval()
    meta = {"steps": 3, "ab_centroids": [[0.0, 1.0]], "command": "trackpaint train"}
    save_net(tmp_path / "m.pt", net, meta)
    loaded, loaded_meta = load_net(tmp_path / "m.pt")
    assert loaded_meta == meta
    assert loaded.config == TINY and not loaded.training
    x = torch.randn(1, 3, 40, 48)
    with torch.no_grad():
        assert torch.equal(net(x), loaded(x))
    payload = torch.load(tmp_path / "m.pt", weights_only=True)
    assert set(payload) == {"arch", "arch_config", "state_dict", "meta"}


def test_load_errors(tmp_path) -> None:
    with pytest.raises(ModelError):
        load_net(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError):
        load_net(tmp_path / "junk.pt")
    torch.save({"arch": "nope", "arch_config": {}, "state_dict": {}, "meta": {}}, tmp_path / "a.pt")
    with pytest.raises(ModelError):
        load_net(tmp_path / "a.pt")


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts Linux threads")
def test_loading_runs_no_openmp_team_on_the_calling_thread(tmp_path) -> None:
    """The GUI loads models on its own thread: copying large weights there would leave an idle
    OpenMP team behind it, and libgomp then throttles the propagation worker's spin-waiting
    (more OpenMP threads than CPUs). Loading assigns the tensors instead: no thread appears."""
    save_net(tmp_path / "m.pt", TrackNet(NetConfig(widths=(8, 16, 256), blocks=(0, 0, 1))), {})
    code = (
        "import os, sys, torch\n"
        "torch.set_num_threads(2)\n"
        "from tracker_core.nets import load_net\n"
        "n0 = len(os.listdir('/proc/self/task'))\n"
        "net, _ = load_net(sys.argv[1])\n"
        "big = max(p.numel() for p in net.parameters())\n"
        "print(big, len(os.listdir('/proc/self/task')) - n0)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "m.pt")],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.split()
    assert int(out[0]) > 32768  # large enough for torch to copy it in parallel
    assert int(out[1]) == 0
