"""`trackpaint batch` on the local runner: outputs, resume, failure isolation, manifest errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.batch.conftest import FAST, Clip, make_clip, manifest_for, project_masks, write_csv
from tracker_core.batch import STATE_NAME, STATUS_DONE, STATUS_SKIPPED, SUMMARY_NAME
from tracker_core.cli import main
from tracker_core.export import import_coco, import_davis
from tracker_core.masks import write_indexed_png
from tracker_core.project import FrameState


def batch(capsys, manifest: Path, out: Path, *extra: str) -> tuple[int, str, str, dict]:
    code = main(["-q", "batch", str(manifest), "--out", str(out), *FAST, *extra])
    captured = capsys.readouterr()
    summary_path = out / SUMMARY_NAME
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    return code, captured.out, captured.err, summary


def statuses(summary: dict) -> dict[str, str]:
    return {item["name"]: item["status"] for item in summary["items"]}


def test_every_item_gets_a_project_exports_and_a_summary(clips, tmp_path, capsys):
    manifest = manifest_for(clips, tmp_path / "manifest.csv")
    out = tmp_path / "out"
    code, stdout, _, summary = batch(capsys, manifest, out, "--export", "davis,coco")
    assert code == 0
    assert statuses(summary) == {c.name: STATUS_DONE for c in clips}
    for clip, item in zip(clips, summary["items"]):
        masks, states, conf = project_masks(out / clip.name / f"{clip.name}.trackpaint")
        assert masks.shape[0] == clip.frames == item["frames"]
        assert states[0] == FrameState.PAINTED
        assert (states[1:] == FrameState.PROPAGATED).all()
        assert np.isfinite(conf[1:]).all()
        assert item["confidence_min"] == pytest.approx(float(conf[1:].min()), abs=1e-6)
        _, davis = import_davis(out / clip.name / "Annotations" / clip.name)
        assert sorted(davis) == list(range(clip.frames))
        assert np.array_equal(davis[3].mask, masks[3])
        _, coco, _ = import_coco(out / clip.name / f"{clip.name}.json")
        assert np.array_equal(coco[3].mask, masks[3])
        assert (out / clip.name / STATE_NAME).is_file()
    # the summary table: item, frames, ms/frame, confidence mean/min, status
    assert "ms/frame" in stdout and "conf mean" in stdout and "conf min" in stdout
    assert all(c.name in stdout for c in clips)


def test_batch_writes_what_propagate_writes(clips, tmp_path, capsys):
    """One code path: a batch item's project equals `trackpaint propagate --project`'s."""
    clip = clips[0]
    manifest = manifest_for([clip], tmp_path / "m.csv")
    code, _, _, _ = batch(capsys, manifest, tmp_path / "out")
    assert code == 0
    single = tmp_path / "single.trackpaint"
    argv = ["-q", "propagate", str(clip.video), "--init", str(clip.mask), "--project", str(single)]
    assert main([*argv, *FAST]) == 0
    a, sa, ca = project_masks(tmp_path / "out" / clip.name / f"{clip.name}.trackpaint")
    b, sb, cb = project_masks(single)
    assert np.array_equal(a, b) and np.array_equal(sa, sb)
    np.testing.assert_array_equal(ca, cb)


def test_rerun_skips_unchanged_items_and_recomputes_a_changed_mask(clips, tmp_path, capsys):
    manifest = manifest_for(clips, tmp_path / "manifest.csv")
    out = tmp_path / "out"
    assert batch(capsys, manifest, out)[0] == 0
    project = out / "beta" / "beta.trackpaint"
    first = project.stat().st_mtime_ns
    code, _, _, summary = batch(capsys, manifest, out)
    assert code == 0
    assert statuses(summary) == {c.name: STATUS_SKIPPED for c in clips}
    assert project.stat().st_mtime_ns == first
    # skipped items still report their numbers
    assert all(item["frames"] > 0 and item["ms_per_frame"] > 0 for item in summary["items"])

    beta = clips[1]
    shifted = np.zeros((64, 96), np.uint8)
    shifted[10:30, 40:70] = 1
    write_indexed_png(beta.mask, shifted)
    code, _, _, summary = batch(capsys, manifest, out)
    assert code == 0
    assert statuses(summary) == {
        "alpha": STATUS_SKIPPED,
        "beta": STATUS_DONE,
        "gamma": STATUS_SKIPPED,
    }
    masks, _, _ = project_masks(project)
    assert np.array_equal(masks[0], shifted)

    # changed settings (another protocol) recompute everything
    code, _, _, summary = batch(capsys, manifest, out, "--topk", "5")
    assert set(statuses(summary).values()) == {STATUS_DONE}


def test_an_item_whose_output_was_removed_is_recomputed(clips, tmp_path, capsys):
    manifest = manifest_for(clips[:2], tmp_path / "manifest.csv")
    out = tmp_path / "out"
    assert batch(capsys, manifest, out, "--export", "davis")[0] == 0
    (out / "alpha" / "Annotations" / "alpha" / "00003.png").unlink()
    _, _, _, summary = batch(capsys, manifest, out, "--export", "davis")
    assert statuses(summary) == {"alpha": STATUS_DONE, "beta": STATUS_SKIPPED}
    assert (out / "alpha" / "Annotations" / "alpha" / "00003.png").is_file()


def test_failing_items_are_reported_and_do_not_stop_the_others(clips, tmp_path, capsys):
    data = clips[0].video.parent
    damaged = make_clip(data, "damaged", 8, 3)
    (damaged.video / "00004.png").write_bytes(b"not a png at all")
    wrong_size = data / "wrong-size.png"
    write_indexed_png(wrong_size, np.ones((10, 10), np.uint8))
    rows = [
        {"video": clips[0].video, "mask": clips[0].mask},
        {"video": data / "nowhere", "mask": clips[0].mask},
        {"video": clips[1].video, "mask": wrong_size, "name": "badmask"},
        {"video": damaged.video, "mask": damaged.mask},
        {"video": clips[1].video, "mask": clips[1].mask},
    ]
    manifest = write_csv(tmp_path / "manifest.csv", rows)
    out = tmp_path / "out"
    code, stdout, _, summary = batch(capsys, manifest, out, "--workers", "2")
    assert code == 1
    got = statuses(summary)
    assert got["alpha"] == got["beta"] == STATUS_DONE
    assert got["nowhere"].startswith("failed: ") and "nowhere" in got["nowhere"]
    assert got["badmask"].startswith("failed: ") and "wrong-size.png" in got["badmask"]
    assert got["damaged"].startswith("failed: ") and "frame 4" in got["damaged"]
    assert all("\n" not in s for s in got.values())
    assert summary["failed"] == 3
    assert not (out / "damaged" / "damaged.trackpaint").exists()  # nothing half-written
    assert not (out / "damaged" / STATE_NAME).exists()
    assert "3 failed" in stdout
    # with --skip-damaged the damaged video is pre-labelled, its bad frame left empty
    _, _, _, summary = batch(capsys, manifest, out, "--skip-damaged")
    assert statuses(summary)["damaged"] == STATUS_DONE
    _, states, _ = project_masks(out / "damaged" / "damaged.trackpaint")
    assert states[4] == FrameState.EMPTY and states[5] == FrameState.PROPAGATED


def test_a_project_seeds_from_its_earliest_keyframe(clips, tmp_path, capsys):
    clip = clips[0]
    first = tmp_path / "first"
    assert batch(capsys, manifest_for([clip], tmp_path / "m1.csv"), first)[0] == 0
    seed = first / clip.name / f"{clip.name}.trackpaint"
    rows = [{"video": clip.video, "project": seed, "name": "reseeded"}]
    manifest = tmp_path / "m2.jsonl"
    manifest.write_text("\n".join(json.dumps({k: str(v) for k, v in r.items()}) for r in rows))
    code, _, _, summary = batch(capsys, manifest, tmp_path / "second")
    assert code == 0, summary
    masks, states, _ = project_masks(tmp_path / "second" / "reseeded" / "reseeded.trackpaint")
    seeded, _, _ = project_masks(seed)
    assert states[0] == FrameState.PAINTED and np.array_equal(masks[0], seeded[0])


def test_a_corrected_project_is_not_overwritten(clips, tmp_path, capsys):
    """A project saved in the GUI after the batch is the user's: a re-run refuses to replace
    it (the item fails naming it) instead of losing the corrections."""
    from tracker_core.project import Project

    manifest = manifest_for(clips[:1], tmp_path / "manifest.csv")
    out = tmp_path / "out"
    assert batch(capsys, manifest, out)[0] == 0
    path = out / "alpha" / "alpha.trackpaint"
    with Project.open(path) as project:
        labels = project.labels(3)
        corrected = np.zeros_like(labels.mask)
        corrected[5:20, 5:20] = 1
        project.set_frame(3, type(labels)(mask=corrected), FrameState.PAINTED)
        project.save()
    before = path.read_bytes()
    code, _, _, summary = batch(capsys, manifest, out)
    assert code == 1
    assert str(path) in statuses(summary)["alpha"]
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("mask\nm.png\n", "no 'video' column"),
        ("video,mask,project\nv,m.png,p.trackpaint\n", "exactly one of 'mask' and 'project'"),
        ("video\nv\n", "exactly one of 'mask' and 'project'"),
        ("video,mask,frame\nv,m.png,-1\n", "'frame' must be a frame index"),
        ("video,mask,preset\nv,m.png,turbo\n", "unknown preset 'turbo'"),
        ("video,mask,colour\nv,m.png,red\n", "unknown column 'colour'"),
        ("video,mask\nv,m.png\nv,m2.png\n", "line 3: name 'v' is used on line 2"),
        ("video,mask\n", "has no items"),
        ("video,mask,name\nv,m.png,../up\n", "cannot name an output folder"),
    ],
)
def test_manifest_errors_are_one_line_and_exit_2(tmp_path, capsys, text, fragment):
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(text)
    code, _, err, _ = batch(capsys, manifest, tmp_path / "out")
    assert code == 2
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("trackpaint: error: "), err
    assert str(manifest) in lines[0] and fragment in lines[0], err
    assert not (tmp_path / "out").exists()


def test_jsonl_manifest_errors_name_the_line(tmp_path, capsys):
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text('{"video": "a", "mask": "m.png"}\n{"video": "b", "mask": \n')
    code, _, err, _ = batch(capsys, manifest, tmp_path / "out")
    assert code == 2 and f"{manifest}: line 2: not JSON" in err


def test_unknown_export_format_is_an_error(clips, tmp_path, capsys):
    manifest = manifest_for(clips[:1], tmp_path / "manifest.csv")
    code, _, err, _ = batch(capsys, manifest, tmp_path / "out", "--export", "yolo")
    assert code == 2 and "unknown format 'yolo'" in err


def test_help_documents_the_columns(capsys):
    with pytest.raises(SystemExit):
        main(["batch", "--help"])
    text = capsys.readouterr().out
    for column in ("video", "mask", "frame", "project", "name", "model", "preset"):
        assert f"\n  {column} " in text
    assert "Exit status" in text


def test_clips_fixture_sanity(clips: list[Clip]):
    assert [c.frames for c in clips] == [8, 10, 9]


def test_an_output_root_inside_an_input_is_refused(clips, tmp_path, capsys):
    manifest = manifest_for(clips[:1], tmp_path / "manifest.csv")
    out = clips[0].video / "labels"
    code, _, err, _ = batch(capsys, manifest, out)
    assert code == 2 and "inside the input video" in err and err.count("\n") == 1
    assert not out.exists()
