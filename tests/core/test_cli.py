"""The `trackpaint` CLI end to end on tiny synthetic data (no ../shared needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.fixtures_video import (
    make_moving_square_frames,
    write_davis_sequence,
    write_frame_folder,
)
from tracker_core.cli import main
from tracker_core.evaluate import jaccard
from tracker_core.labels import FrameLabels, ObjectSpec
from tracker_core.masks import davis_palette, read_indexed_png, write_indexed_png
from tracker_core.project import FrameState, Project

FAST = ["--model", "lab", "--radius", "2", "--keyframe-radius", "3", "--n-recent", "2"]


@pytest.fixture
def clip(tmp_path: Path):
    frames, masks = make_moving_square_frames(n=8, h=64, w=96)
    folder = tmp_path / "my clip ü"
    write_frame_folder(folder, frames)
    init = tmp_path / "init.png"
    write_indexed_png(init, masks[0])
    return folder, init, frames, masks


def run(args: list[str], capsys) -> tuple[int, str, str]:
    code = main(["-q", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_propagate_writes_an_indexed_png_per_frame(clip, tmp_path, capsys):
    folder, init, _, masks = clip
    out = tmp_path / "out"
    code, stdout, _ = run(
        ["propagate", str(folder), "--init", str(init), "--out", str(out), *FAST], capsys
    )
    assert code == 0
    files = sorted(out.glob("*.png"))
    assert [f.name for f in files] == [f"{i:05d}.png" for i in range(8)]
    preds = [read_indexed_png(f) for f in files]
    assert np.mean([jaccard(p > 0, m > 0) for p, m in zip(preds, masks)]) > 0.7
    assert "ms/frame" in stdout


def test_propagate_from_a_middle_frame_fills_both_directions(clip, tmp_path, capsys):
    folder, _, _, masks = clip
    init = tmp_path / "mid.png"
    write_indexed_png(init, masks[4] * 3)
    out = tmp_path / "out"
    args = ["propagate", str(folder), "--init", str(init), "--init-frame", "4", "--out", str(out)]
    code, _, _ = run([*args, *FAST], capsys)
    assert code == 0
    first = read_indexed_png(out / "00000.png")
    assert set(np.unique(first)) == {0, 3}
    assert jaccard(first > 0, masks[0] > 0) > 0.6


@pytest.mark.parametrize(
    ("make_mask", "needle"),
    [
        (lambda m: np.zeros_like(m), "empty"),
        (lambda m: m[:32], "32x96"),
    ],
)
def test_bad_initial_masks_fail_with_one_line_naming_the_file(
    clip, tmp_path, capsys, make_mask, needle
):
    folder, _, _, masks = clip
    bad = tmp_path / "bad.png"
    write_indexed_png(bad, make_mask(masks[0]))
    code, _, err = run(
        ["propagate", str(folder), "--init", str(bad), "--out", str(tmp_path / "o")], capsys
    )
    assert code == 2
    assert err.count("\n") == 1 and str(bad) in err and needle in err


def test_unwritable_output_and_missing_video_fail_cleanly(clip, tmp_path, capsys):
    folder, init, _, _ = clip
    blocker = tmp_path / "a file"
    blocker.write_text("user data")
    code, _, err = run(
        ["propagate", str(folder), "--init", str(init), "--out", str(blocker / "x")], capsys
    )
    assert code == 2 and f"{blocker}: is a file, not a folder" in err  # not "not writable"
    assert blocker.read_text() == "user data"
    code, _, err = run(
        ["propagate", str(tmp_path / "nope.mp4"), "--init", str(init), "--out", "o"], capsys
    )
    assert code == 2 and "nope.mp4" in err


@pytest.mark.parametrize("pick", ["oracle", "confidence"])
def test_eval_with_corrections_on_a_tiny_davis_layout(tmp_path, capsys, pick):
    frames, masks = make_moving_square_frames(n=10, h=64, w=96)
    root = tmp_path / "davis"
    mixed = [m * 255 if i % 2 else m for i, m in enumerate(masks)]  # 0/255 and indexed both load
    write_davis_sequence(root, "square", frames, mixed)
    code, out, _ = run(["eval", str(root), "--corrections", "2", "--pick", pick, *FAST], capsys)
    assert code == 0
    assert "square" in out and "J&F after 2 corrections" in out
    mean_line = next(line for line in out.splitlines() if line.startswith("mean"))
    # Copying frame 0's mask everywhere scores ~3 J&F on this clip (the square moves away).
    assert float(mean_line.split("J&F")[1].split()[0]) > 30
    rounds = [float(line.split(":")[1]) for line in out.splitlines() if line.startswith("J&F ")]
    assert len(rounds) == 3 and rounds[2] >= rounds[0]


def test_export_project_to_davis_and_coco(clip, tmp_path, capsys):
    folder, _, frames, masks = clip
    proj = Project.new(folder, len(frames), 64, 96, [ObjectSpec(1, "square", (200, 0, 0))])
    proj.set_frame(0, FrameLabels(mask=masks[0]), FrameState.PAINTED)
    proj.set_frame(3, FrameLabels(mask=masks[3]), FrameState.PROPAGATED, confidence=0.9)
    path = proj.save(tmp_path / "p.tpproj")
    proj.close()
    code, _, _ = run(
        ["export", str(path), "--format", "davis", "--out", str(tmp_path / "d")], capsys
    )
    assert code == 0
    pngs = sorted((tmp_path / "d" / "Annotations").rglob("*.png"))
    assert len(pngs) == 8
    assert np.array_equal(read_indexed_png(pngs[3]), masks[3])
    code, _, _ = run(
        ["export", str(path), "--format", "coco", "--out", str(tmp_path / "c.json")], capsys
    )
    assert code == 0
    from pycocotools.coco import COCO

    coco = COCO(str(tmp_path / "c.json"))
    assert len(coco.getImgIds()) == 8 and len(coco.getAnnIds()) == 2
    ann = coco.loadAnns(coco.getAnnIds(imgIds=[4]))[0]
    assert np.array_equal(coco.annToMask(ann), masks[3])
    assert davis_palette()[1].tolist() == [128, 0, 0]


def test_export_of_a_broken_project_fails_with_the_path(tmp_path, capsys):
    broken = tmp_path / "broken.tpproj"
    broken.write_bytes(b"not a project at all")
    code, _, err = run(
        ["export", str(broken), "--format", "davis", "--out", str(tmp_path / "d")], capsys
    )
    assert code == 2 and str(broken) in err


def test_presets_and_protocol_overrides(clip, tmp_path, capsys):
    from tracker_core.cli import build_parser, protocol_from_args
    from tracker_core.propagator import PRESETS

    parse = build_parser().parse_args
    base = ["propagate", "clip", "--init", "m.png", "--out", "o"]
    assert protocol_from_args(parse(base)) == PRESETS["fast"]
    assert protocol_from_args(parse([*base, "--preset", "accurate"])) == PRESETS["accurate"]
    over = protocol_from_args(parse([*base, "--preset", "accurate", "--radius", "3"]))
    assert over.radius == 3 and over.n_recent == PRESETS["accurate"].n_recent
    with pytest.raises(SystemExit):
        parse([*base, "--preset", "turbo"])
    folder, init, _, _ = clip
    for preset in PRESETS:
        out = tmp_path / preset
        args = ["propagate", str(folder), "--init", str(init), "--out", str(out), "--preset"]
        code, stdout, _ = run([*args, preset, *FAST], capsys)
        assert code == 0 and f"lab, {preset})" in stdout
        assert len(list(out.glob("*.png"))) == 8


def test_a_bad_protocol_value_is_a_one_line_error(clip, tmp_path, capsys):
    folder, init, _, _ = clip
    args = ["propagate", str(folder), "--init", str(init), "--out", str(tmp_path / "o")]
    code, _, err = run([*args, *FAST, "--temperature", "0"], capsys)
    assert code == 2
    assert err.startswith("trackpaint: error: --preset fast: temperature must be > 0")


def test_any_propagation_setting_can_be_given_with_set(clip, tmp_path, capsys):
    from tracker_core.cli import build_parser, protocol_from_args

    parse = build_parser().parse_args
    base = ["eval", "root", "--set", "region_localise=true", "--set", "region-slack=0.5"]
    cfg = protocol_from_args(parse([*base, "--keyframe-radius", "8"]))
    assert cfg.region_localise is True and cfg.region_slack == 0.5 and cfg.keyframe_radius == 8
    folder, init, _, _ = clip
    args = ["propagate", str(folder), "--init", str(init), "--out", str(tmp_path / "o")]
    for bad, says in (("nonsense=1", "FIELD=VALUE"), ("topk=many", "not a valid int")):
        code, _, err = run([*args, *FAST, "--set", bad], capsys)
        assert code == 2 and err.startswith("trackpaint: error: --set: ") and says in err
        assert len(err.strip().splitlines()) == 1
