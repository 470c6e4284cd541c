"""Model → Adapt model to this video: test-time adaptation in the background."""

from __future__ import annotations

import torch

from tests.gui.helpers import wait_idle
from tracker_core.encoder import LearnedEncoder
from tracker_core.nets import NetConfig, TrackNet
from tracker_core.train.adapt import AdaptConfig
from tracker_core.train.data import SamplerConfig

TINY = NetConfig(widths=(8, 8, 16), blocks=(0, 0, 1), dim=8)
SMALL = AdaptConfig(
    batch_size=2,
    lr=1e-2,
    num_clusters=4,
    max_frames=8,
    sampler=SamplerConfig(crop_size=32, max_gap=2),
)


def tiny_encoder() -> LearnedEncoder:
    torch.manual_seed(0)
    return LearnedEncoder(TrackNet(TINY), name="tiny")


def test_adapt_replaces_the_encoder_with_a_tuned_copy(qtbot, make_window, frame_folder) -> None:
    encoder = tiny_encoder()
    window = make_window(encoder)
    window.adapt_config = SMALL
    assert not window.commands["adapt"].isEnabled()  # nothing open yet
    assert window.open_path(frame_folder[0])
    assert window.commands["adapt"].isEnabled()
    before = {k: v.clone() for k, v in encoder.net.state_dict().items()}
    assert window.start_adaptation(3) is not None
    assert not window.commands["propagate_forward"].isEnabled()  # one exclusive job at a time
    wait_idle(qtbot, window)
    assert window.encoder is not encoder and window.encoder.name == "tiny+adapted"
    assert window.doc.session.encoder is window.encoder
    assert "tiny+adapted" in window.status.model.text()
    tuned = window.encoder.net.state_dict()
    assert any(not torch.equal(before[k], tuned[k]) for k in before)
    assert all(torch.equal(before[k], v) for k, v in encoder.net.state_dict().items())


def test_adapt_cancel_keeps_the_model(qtbot, make_window, frame_folder) -> None:
    encoder = tiny_encoder()
    window = make_window(encoder)
    window.adapt_config = SMALL
    assert window.open_path(frame_folder[0])
    window.start_adaptation(10_000)
    qtbot.waitUntil(lambda: window.status.progress.value() >= 1, timeout=30_000)
    window.commands["cancel_job"].trigger()
    wait_idle(qtbot, window)
    assert window.encoder is encoder
    assert "model: tiny" in window.status.model.text()


def test_adapt_needs_a_learned_model(window, frame_folder) -> None:
    assert window.open_path(frame_folder[0])
    assert not window.commands["adapt"].isEnabled()
    assert window.start_adaptation(3) is None
