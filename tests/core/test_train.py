"""Tests for tracker_core.train: data cache and sampler, objectives, trainer, resume, adapt, CLI."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace

import cv2
import numpy as np
import pytest
import torch

from tracker_core.encoder import load_encoder
from tracker_core.errors import ModelError
from tracker_core.nets import NetConfig, TrackNet, load_net, save_net
from tracker_core.runtime import weights_hash
from tracker_core.train.adapt import AdaptConfig, adapt
from tracker_core.train.cli import add_train_parser, config_from_args
from tracker_core.train.data import (
    CacheConfig,
    ClipBank,
    SamplerConfig,
    build_cache,
    find_clip_sources,
    sample_batch,
)
from tracker_core.train.objectives import (
    ObjectiveConfig,
    affinity_distill_loss,
    clip_losses,
    colorization_loss,
    crw_loss,
    feature_distill_loss,
    fit_ab_clusters,
    kmeans,
    soft_colour_labels,
)
from tracker_core.train.trainer import (
    TrainConfig,
    config_path,
    init_from,
    state_path,
    train,
    train_step,
)

TINY = NetConfig(widths=(8, 8, 16), blocks=(0, 0, 1), dim=8)
SAMPLER = SamplerConfig(crop_size=32, max_gap=2)


def moving_clip(num_frames: int = 10, h: int = 48, w: int = 64, seed: int = 0) -> np.ndarray:
    """(T, h, w, 3) uint8: coloured squares moving over a textured background."""
    rng = np.random.default_rng(seed)
    background = rng.integers(0, 256, size=(h // 8, w // 8, 3), dtype=np.uint8)
    background = cv2.resize(background, (w, h), interpolation=cv2.INTER_NEAREST)
    frames = []
    for t in range(num_frames):
        frame = background.copy()
        frame[10 + t : 26 + t, 5 + 2 * t : 21 + 2 * t] = (255, 40, 40)
        frame[30:40, 40 - t : 52 - t] = (30, 200, 60)
        frames.append(frame)
    return np.stack(frames)


def tiny_config(**kwargs) -> TrainConfig:
    base = TrainConfig(
        steps=4, batch_size=2, warmup=2, ckpt_every=2, cluster_frames=4, net=TINY, sampler=SAMPLER
    )
    return replace(base, **kwargs)


@pytest.fixture
def bank() -> ClipBank:
    return ClipBank([moving_clip(seed=0), moving_clip(seed=1)])


# --------------------------------------------------------------------------- data
def test_cache_from_frame_folder_and_video(tmp_path) -> None:
    clip = moving_clip()
    folder = tmp_path / "src" / "frames" / "seq"
    folder.mkdir(parents=True)
    for i, frame in enumerate(clip):
        cv2.imwrite(str(folder / f"{i:05d}.png"), frame[..., ::-1])
    video = tmp_path / "src" / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for frame in clip:
        writer.write(np.ascontiguousarray(frame[..., ::-1]))
    writer.release()
    assert find_clip_sources([tmp_path / "src"]) == sorted([folder, video])
    files = build_cache(
        [tmp_path / "src"], tmp_path / "cache", CacheConfig(short_side=24, max_frames=5)
    )
    arrays = [np.load(f) for f in files]
    assert all(a.shape == (5, 24, 32, 3) and a.dtype == np.uint8 for a in arrays)
    assert build_cache([tmp_path / "src"], tmp_path / "cache", CacheConfig(24, 5)) == files


def test_sampler_shapes_and_determinism(bank: ClipBank) -> None:
    config = replace(SAMPLER, synthetic_prob=0.5)
    a = sample_batch(np.random.default_rng(3), bank, config, 3)
    b = sample_batch(np.random.default_rng(3), bank, config, 3)
    assert a.shape == (3, 4, 32, 32, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)


# --------------------------------------------------------------------------- objectives
def test_kmeans_recovers_separated_clusters() -> None:
    rng = np.random.default_rng(0)
    centres = np.array([[-40.0, 0.0], [0.0, 40.0], [40.0, -20.0]])
    points = np.concatenate([c + rng.normal(0, 1, size=(200, 2)) for c in centres])
    found = kmeans(points, 3, rng)
    assert found.shape == (3, 2)
    np.testing.assert_allclose(np.sort(found, axis=0), np.sort(centres, axis=0), atol=0.5)


def test_colour_clusters_and_soft_labels() -> None:
    rng = np.random.default_rng(0)
    centroids = fit_ab_clusters(list(moving_clip(4)), rng, k=16, max_points=3000)
    assert centroids.shape == (16, 2) and centroids.dtype == np.float32
    lab = torch.randn(2, 3, 20, 28) * 30
    labels = soft_colour_labels(lab, torch.from_numpy(centroids), 8)
    assert labels.shape == (2, 16, 3, 4)
    torch.testing.assert_close(labels.sum(1), torch.ones(2, 3, 4))


def test_colorization_loss_prefers_matching_features() -> None:
    labels = torch.nn.functional.one_hot(torch.arange(16) % 4, 4).float().T.reshape(1, 1, 4, 4, 4)
    labels = labels.repeat(1, 4, 1, 1, 1)  # (1, T=4, K=4, 4, 4): the same colours in every frame
    codes = torch.nn.functional.normalize(torch.randn(16, 16), dim=1).T.reshape(1, 1, 16, 4, 4)
    matching = codes.repeat(1, 4, 1, 1, 1)
    shuffled = matching.clone()
    shuffled[:, -1] = matching[:, -1].flatten(2)[..., torch.randperm(16)].reshape(1, 16, 4, 4)
    assert colorization_loss(matching, labels, 0.05) < colorization_loss(shuffled, labels, 0.05)


def test_crw_loss_is_low_for_identical_frames() -> None:
    gen = torch.Generator().manual_seed(0)
    feats = torch.randn(1, 1, 16, 6, 6).repeat(1, 3, 1, 1, 1)
    noise = torch.randn(1, 3, 16, 6, 6)
    low = crw_loss(feats, 0.07, 0.0, 2, gen)
    high = crw_loss(noise, 0.07, 0.0, 2, gen)
    assert low < high


@pytest.mark.parametrize("objective", ["colorization", "colorization+crw", "crw"])
def test_losses_are_finite_and_deterministic(bank: ClipBank, objective: str) -> None:
    clips = torch.from_numpy(sample_batch(np.random.default_rng(0), bank, SAMPLER, 2))
    centroids = torch.from_numpy(fit_ab_clusters(list(bank.clips[0][:3]), np.random.default_rng(0)))
    results = []
    for _ in range(2):
        torch.manual_seed(0)
        net = TrackNet(TINY)
        terms = clip_losses(
            net, clips, centroids, ObjectiveConfig(objective=objective), np.random.default_rng(1)
        )
        results.append(float(terms["loss"].detach()))
    assert np.isfinite(results[0]) and results[0] == results[1]


def test_training_steps_reduce_loss_on_a_fixed_clip(bank: ClipBank) -> None:
    torch.manual_seed(0)
    net = TrackNet(TINY)
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    clips = torch.from_numpy(sample_batch(np.random.default_rng(0), bank, SAMPLER, 4))
    centroids = torch.from_numpy(fit_ab_clusters(list(bank.clips[0][:3]), np.random.default_rng(0)))
    config = ObjectiveConfig(target_grey=1.0, ref_grey=1.0, jitter=0.0)
    losses = [
        train_step(net, optimizer, clips, centroids, config, np.random.default_rng(0))["loss"]
        for _ in range(15)
    ]
    assert losses[-1] < losses[0]


# --------------------------------------------------------------------------- trainer
def test_train_writes_checkpoint_config_and_state(tmp_path, bank: ClipBank) -> None:
    out = train(tiny_config(), [], tmp_path / "m.pt", bank=bank, command="x", show_progress=False)
    net, meta = load_net(out)
    assert net.stride == 8 and meta["steps"] == 4 and meta["command"] == "x"
    assert np.asarray(meta["ab_centroids"]).shape == (16, 2)
    assert json.loads(config_path(out).read_text())["train_config"]["steps"] == 4
    assert state_path(out).is_file()


def test_resume_continues_exactly(tmp_path, bank: ClipBank) -> None:
    straight = train(tiny_config(), [], tmp_path / "a.pt", bank=bank, show_progress=False)

    class StopTrainingError(Exception):
        pass

    def stop_at_two(report) -> None:
        if report.step == 2:
            raise StopTrainingError

    with pytest.raises(StopTrainingError):
        train(
            tiny_config(),
            [],
            tmp_path / "b.pt",
            bank=bank,
            show_progress=False,
            on_step=stop_at_two,
        )
    assert load_net(tmp_path / "b.pt")[1]["steps"] == 2
    resumed = train(
        tiny_config(),
        [],
        tmp_path / "b.pt",
        bank=bank,
        show_progress=False,
        resume=tmp_path / "b.pt",
    )
    net_a, _ = load_net(straight)
    net_b, meta_b = load_net(resumed)
    assert meta_b["steps"] == 4
    for (name, a), b in zip(net_a.state_dict().items(), net_b.state_dict().values()):
        torch.testing.assert_close(a, b, msg=name)


# --------------------------------------------------------------------------- adapt
def test_adapt_changes_a_copy_and_reports_progress() -> None:
    torch.manual_seed(0)
    net = TrackNet(TINY).eval()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    calls = []
    config = AdaptConfig(batch_size=2, lr=1e-2, sampler=SAMPLER)
    tuned = adapt(
        net,
        list(moving_clip(8)),
        3,
        config=config,
        progress=lambda s, n, loss: calls.append((s, n, loss)),
    )
    assert tuned is not net and not tuned.training
    assert [c[:2] for c in calls] == [(1, 3), (2, 3), (3, 3)]
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert any(not torch.equal(before[k], v) for k, v in tuned.state_dict().items())


def test_adapt_respects_cancel() -> None:
    net = TrackNet(TINY)
    polls = iter([False, True])
    steps = []
    result = adapt(
        net,
        list(moving_clip(8)),
        50,
        config=AdaptConfig(batch_size=2, sampler=SAMPLER),
        progress=lambda s, n, loss: steps.append(s),
        should_cancel=lambda: next(polls),
    )
    assert result is net and steps == [1]


# --------------------------------------------------------------------------- CLI
def test_cli_parser_builds_config() -> None:
    parser = argparse.ArgumentParser()
    add_train_parser(parser.add_subparsers(dest="command"))
    argv = "train --data a b --out m.pt --steps 7 --objective colorization+crw --seed 3"
    args = parser.parse_args([*argv.split(), "--stop-at", "5", "--lab-weight", "4"])
    config = config_from_args(args)
    assert args.data == ["a", "b"] and args.func.__name__ == "run_train" and args.stop_at == 5
    assert config.steps == 7 and config.seed == 3 and config.lab_weight == 4.0
    assert config.objective.objective == "colorization+crw"


def test_stop_at_checkpoints_without_changing_the_schedule(tmp_path, bank: ClipBank) -> None:
    out = train(tiny_config(), [], tmp_path / "m.pt", bank=bank, show_progress=False, stop_at=2)
    _, meta = load_net(out)
    assert meta["steps"] == 2 and meta["train_config"]["steps"] == 4


# --------------------------------------------------------------------------- distillation
STUDENT = NetConfig(widths=(8, 8, 8), blocks=(0, 0, 1), dim=8)  # TINY's stride and dim


@pytest.fixture
def teacher_ckpt(tmp_path):
    """A tiny 'trained' teacher checkpoint with the meta a propagator needs."""
    torch.manual_seed(5)
    net = TrackNet(TINY).eval()
    centroids = np.linspace(-50, 50, 32, dtype=np.float32).reshape(16, 2)
    path = tmp_path / "teacher.pt"
    save_net(path, net, {"lab_weight": 5.0, "ab_centroids": centroids.tolist()})
    return path


def test_feature_distill_loss_ignores_scale_and_sees_direction() -> None:
    teacher = torch.randn(2, 8, 3, 4)
    assert float(feature_distill_loss(3.0 * teacher, teacher)) == pytest.approx(0.0, abs=1e-6)
    assert float(feature_distill_loss(-teacher, teacher)) == pytest.approx(2.0, abs=1e-6)
    assert 0.5 < float(feature_distill_loss(torch.randn(2, 8, 3, 4), teacher)) < 1.5


def test_affinity_distill_loss_is_zero_only_for_the_same_affinity() -> None:
    teacher = torch.nn.functional.normalize(torch.randn(2, 4, 8, 3, 3), dim=2)
    other = torch.nn.functional.normalize(torch.randn(2, 4, 8, 3, 3), dim=2)
    assert float(affinity_distill_loss(teacher, teacher, 0.05)) == pytest.approx(0.0, abs=1e-5)
    assert float(affinity_distill_loss(other, teacher, 0.05)) > 0.1
    # a rotation of the feature space keeps every cosine, hence the affinity
    rotation, _ = torch.linalg.qr(torch.randn(8, 8))
    rotated = torch.einsum("dc,btchw->btdhw", rotation, teacher)
    assert float(affinity_distill_loss(rotated, teacher, 0.05)) == pytest.approx(0.0, abs=1e-4)


def test_distill_losses_need_a_matching_teacher(bank: ClipBank) -> None:
    clips = torch.from_numpy(sample_batch(np.random.default_rng(0), bank, SAMPLER, 2))
    config = ObjectiveConfig(objective="distill")
    torch.manual_seed(0)
    teacher, student = TrackNet(TINY).eval(), TrackNet(STUDENT)
    centroids = torch.zeros(16, 2)
    with pytest.raises(ValueError, match="teacher"):
        clip_losses(student, clips, centroids, config, np.random.default_rng(1))
    wide = TrackNet(replace(STUDENT, dim=4))
    with pytest.raises(ValueError, match="does not match"):
        clip_losses(wide, clips, centroids, config, np.random.default_rng(1), teacher=teacher)
    runs = [
        clip_losses(student, clips, centroids, config, np.random.default_rng(1), teacher=teacher)
        for _ in range(2)
    ]
    assert set(runs[0]) == {"feature", "affinity", "loss"}
    first, second = (float(r["loss"].detach()) for r in runs)
    assert np.isfinite(first) and first == second
    assert all(p.grad is None for p in teacher.parameters())


def test_distill_steps_bring_the_student_towards_the_teacher(bank: ClipBank) -> None:
    torch.manual_seed(0)
    teacher, student = TrackNet(TINY).eval(), TrackNet(STUDENT)
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    optimizer = torch.optim.Adam(student.parameters(), lr=1e-2)
    clips = torch.from_numpy(sample_batch(np.random.default_rng(0), bank, SAMPLER, 4))
    config = ObjectiveConfig(objective="distill", jitter=0.0)
    losses = [
        train_step(
            student, optimizer, clips, torch.zeros(16, 2), config, np.random.default_rng(0), teacher
        )
        for _ in range(15)
    ]
    assert losses[-1]["feature"] < 0.8 * losses[0]["feature"]
    assert losses[-1]["affinity"] < 0.5 * losses[0]["affinity"]
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())


def test_distill_checkpoint_keeps_the_teacher_meta_and_loads_as_encoder(
    tmp_path, bank: ClipBank, teacher_ckpt
) -> None:
    config = tiny_config(
        objective=ObjectiveConfig(objective="distill"),
        net=STUDENT,
        teacher=str(teacher_ckpt),
        lab_weight=5.0,
    )
    init = TrackNet(STUDENT)
    copied = init_from(init, load_net(teacher_ckpt)[0])
    assert "body.0.0.weight" in copied and "body.2.0.weight" in copied  # 3->8, 8->8 in both
    assert "body.4.0.weight" not in copied and "head.weight" not in copied  # TINY: 8->16, 16->8
    source = load_net(teacher_ckpt)[0].state_dict()
    torch.testing.assert_close(init.state_dict()["body.2.0.weight"], source["body.2.0.weight"])
    out = train(config, [], tmp_path / "s.pt", bank=bank, show_progress=False)
    net, meta = load_net(out)
    teacher, teacher_meta = load_net(teacher_ckpt)
    assert net.config == STUDENT and meta["objective"] == "distill" and meta["lab_weight"] == 5.0
    assert meta["ab_centroids"] == teacher_meta["ab_centroids"]
    assert meta["teacher"]["weights_sha256"] == weights_hash(teacher)
    encoder = load_encoder(out, precision="fp32", runtime="torch")
    feats = encoder.encode(moving_clip(1)[0])
    assert feats.shape == (8 + 3, 6, 8)


def test_distill_resume_continues_exactly_and_checks_the_teacher(
    tmp_path, bank: ClipBank, teacher_ckpt
) -> None:
    config = tiny_config(
        objective=ObjectiveConfig(objective="distill"), net=STUDENT, teacher=str(teacher_ckpt)
    )
    straight = train(config, [], tmp_path / "a.pt", bank=bank, show_progress=False)
    half = train(config, [], tmp_path / "b.pt", bank=bank, show_progress=False, stop_at=2)
    resumed = train(config, [], half, bank=bank, show_progress=False, resume=half)
    for (name, a), b in zip(
        load_net(straight)[0].state_dict().items(), load_net(resumed)[0].state_dict().values()
    ):
        torch.testing.assert_close(a, b, msg=name)
    other = tmp_path / "other.pt"
    save_net(other, TrackNet(TINY), {"lab_weight": 5.0})
    with pytest.raises(ModelError, match="teacher weights differ"):
        train(
            replace(config, teacher=str(other)),
            [],
            tmp_path / "c.pt",
            bank=bank,
            show_progress=False,
            resume=half,
        )


def test_cli_distill_takes_architecture_and_the_teachers_lab_weight(teacher_ckpt) -> None:
    parser = argparse.ArgumentParser()
    add_train_parser(parser.add_subparsers(dest="command"))
    argv = ["train", "--data", "a", "--out", "m.pt", "--objective", "distill"]
    argv += ["--teacher", str(teacher_ckpt), "--distill-weights", "0.5", "2"]
    argv += ["--arch-config", '{"widths": [24, 48, 64], "blocks": [0, 0, 2]}']
    config = config_from_args(parser.parse_args(argv))
    assert config.net == NetConfig(widths=(24, 48, 64), blocks=(0, 0, 2))
    assert config.teacher == str(teacher_ckpt) and config.init_from_teacher
    assert config.lab_weight == 5.0  # from the teacher's meta
    assert config.objective.distill_feature_weight == 0.5
    assert config.objective.distill_affinity_weight == 2.0
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--data", "a", "--out", "m", "--arch-config", '{"bogus": 1}'])
    resumed = parser.parse_args(
        ["train", "--data", "a", "--out", "m", "--resume", str(teacher_ckpt)]
    )
    assert config_from_args(resumed).lab_weight == 5.0  # the resumed run's, not the default 8
