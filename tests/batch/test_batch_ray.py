"""The same batch on a real local Ray instance (``ray.init(num_cpus=2)``, shared by the session)
gives exactly the local pool's masks, confidences and states; failures and resume behave alike."""

from __future__ import annotations

import json

import numpy as np

from tests.batch.conftest import FAST, manifest_for, project_masks, write_csv
from tracker_core.batch import STATUS_DONE, STATUS_SKIPPED, SUMMARY_NAME
from tracker_core.cli import main


def run(manifest, out, *extra) -> tuple[int, dict[str, str]]:
    code = main(["-q", "batch", str(manifest), "--out", str(out), *FAST, *extra])
    summary = json.loads((out / SUMMARY_NAME).read_text())
    return code, {item["name"]: item["status"] for item in summary["items"]}


def test_ray_and_local_pool_give_identical_outputs(ray_session, clips, tmp_path, capsys):
    rows = [{"video": c.video, "mask": c.mask} for c in clips]
    rows.append({"video": tmp_path / "missing", "mask": clips[0].mask})
    manifest = write_csv(tmp_path / "manifest.csv", rows)
    local, ray_out = tmp_path / "local", tmp_path / "ray"
    code_local, st_local = run(manifest, local, "--workers", "2")
    code_ray, st_ray = run(manifest, ray_out, "--ray", "auto", "--cpus-per-task", "1")
    assert code_local == code_ray == 1  # the missing video fails on both, the rest run
    assert st_local == st_ray
    assert [st_ray[c.name] for c in clips] == [STATUS_DONE] * 3
    assert st_ray["missing"].startswith("failed: ") and "missing" in st_ray["missing"]
    for clip in clips:
        name = f"{clip.name}/{clip.name}.trackpaint"
        a_masks, a_states, a_conf = project_masks(local / name)
        b_masks, b_states, b_conf = project_masks(ray_out / name)
        assert np.array_equal(a_masks, b_masks)
        assert np.array_equal(a_states, b_states)
        np.testing.assert_array_equal(a_conf, b_conf)
    summary = json.loads((ray_out / SUMMARY_NAME).read_text())
    assert summary["runner"].startswith("ray (auto")


def test_ray_rerun_skips_up_to_date_items(ray_session, clips, tmp_path, capsys):
    manifest = manifest_for(clips[:2], tmp_path / "manifest.csv")
    out = tmp_path / "out"
    assert run(manifest, out, "--ray", "auto", "--cpus-per-task", "1")[0] == 0
    (clips[1].video / "00009.png").unlink()  # the video changed: one frame fewer
    code, statuses = run(manifest, out, "--ray", "auto", "--cpus-per-task", "1")
    assert code == 0
    assert statuses == {"alpha": STATUS_SKIPPED, "beta": STATUS_DONE}
    masks, _, _ = project_masks(out / "beta" / "beta.trackpaint")
    assert masks.shape[0] == 9
