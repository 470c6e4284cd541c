"""Annotation effort: corrections (picked by confidence) until every frame has J >= a bar."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from tests.fixtures_video import (
    make_moving_square_frames,
    write_davis_sequence,
)
from tracker_core.cli import main
from tracker_core.encoder import LabEncoder
from tracker_core.evaluate import frame_jaccard, propagate_with_corrections
from tracker_core.propagate import PropagationConfig
from tracker_core.propagator import AffinityPropagator

WEAK = PropagationConfig(radius=1, keyframe_radius=1, tile=4, n_recent=1)  # loses the square


def test_frame_jaccard_averages_the_objects():
    gt = np.zeros((4, 4), np.uint8)
    gt[:2, :2], gt[2:, 2:] = 1, 2
    pred = gt.copy()
    pred[2:, 2:] = 0  # object 2 missed
    assert frame_jaccard(pred, gt, [1, 2]) == pytest.approx(0.5)
    assert frame_jaccard(pred, gt, []) == 1.0


@pytest.mark.parametrize("pick", ["confidence", "oracle"])
def test_corrections_until_every_frame_reaches_the_bar(pick):
    frames, masks = make_moving_square_frames(n=12, h=64, w=96)
    prop = AffinityPropagator(LabEncoder(stride=8), WEAK)
    rounds = list(propagate_with_corrections(frames.__getitem__, masks, prop, 12, pick, 0.85))
    first, final = rounds[0][0], rounds[-1][0]
    assert min(frame_jaccard(p, m, [1]) for p, m in zip(first, masks)) < 0.85  # work to do
    assert all(frame_jaccard(p, m, [1]) >= 0.85 for p, m in zip(final, masks))
    keyframes = rounds[-1][2]
    assert len(rounds) == len(keyframes)  # one round per corrected frame, none wasted
    for (preds, _, keys), (_, _, later) in itertools.pairwise(rounds):
        (new,) = later - keys
        assert frame_jaccard(preds[new], masks[new], [1]) < 0.85  # only bad frames corrected
    # a cap on the rounds still holds
    capped = list(propagate_with_corrections(frames.__getitem__, masks, prop, 1, pick, 0.85))
    assert len(capped) == 2


def test_eval_until_reports_corrections_per_100_frames(tmp_path, capsys):
    frames, masks = make_moving_square_frames(n=10, h=64, w=96)
    root = tmp_path / "davis"
    write_davis_sequence(root, "square", frames, [m * 255 for m in masks])
    weak = ["--model", "lab", "--radius", "1", "--keyframe-radius", "1", "--n-recent", "1"]
    args = ["eval", str(root), "--until", "0.85", "--pick", "confidence", *weak]
    assert main(args) == 0
    out = capsys.readouterr().out
    line = next(s for s in out.splitlines() if s.startswith("square"))
    count = int(line.split("corrections /")[0].split()[-1])
    assert 0 < count < 10 and "10 frames" in line
    summary = next(s for s in out.splitlines() if s.startswith("corrections until"))
    assert f"{100 * count / 10:.1f} per 100 frames (mean), worst" in summary
    assert main(["eval", str(root), "--until", "1.5", *weak]) == 2
