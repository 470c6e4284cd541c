"""VideoSource: exact random access, frame counting, folders, caching and error reporting."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.fixtures_video import (
    add_bad_iccp_chunk,
    corrupt_jpeg,
    decode_sequentially,
    make_moving_square_frames,
    truncate_file,
    write_frame_folder,
    write_video,
)
from tracker_core import video as video_module
from tracker_core.errors import FrameDamaged, VideoError
from tracker_core.video import (
    DamagedFrame,
    VideoInfo,
    VideoSource,
    _FileDecoder,
    list_frame_files,
    natural_sort_key,
    summarize_damaged,
)

SAMPLE = Path(__file__).resolve().parents[2] / "resources" / "sample"
CODECS = [("clip.mp4", "mp4v"), ("clip.avi", "MJPG")]


@pytest.fixture(scope="module")
def long_clip() -> list[np.ndarray]:
    """40 frames, long enough for several mp4v key-frame intervals."""
    frames, _ = make_moving_square_frames(n=40, h=48, w=64)
    return frames


def _random_order(n: int, seed: int = 3) -> list[int]:
    """Every index once in random order, then some backward and far jumps."""
    order = np.random.default_rng(seed).permutation(n).tolist()
    return [*order, n - 1, 0, n // 2, n // 2 - 1, n // 2 + 1, 1, n - 1, n - 2]


# --- video files ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "fourcc"), CODECS)
def test_random_access_matches_sequential_decode(tmp_path, long_clip, name, fourcc):
    path = write_video(tmp_path / name, long_clip, fourcc)
    reference = decode_sequentially(path)
    assert len(reference) == 40
    with VideoSource.open(path, cache_size=0) as video:
        assert video.info == VideoInfo(path, 40, 25.0, 48, 64)
        for index in _random_order(len(video)):
            assert np.array_equal(video.frame(index), reference[index]), index


@pytest.mark.parametrize(("name", "fourcc"), CODECS)
@pytest.mark.parametrize("seek", [True, False], ids=["seeking", "decode-forward"])
def test_both_access_strategies_are_exact(tmp_path, long_clip, name, fourcc, seek):
    path = write_video(tmp_path / name, long_clip, fourcc)
    reference = decode_sequentially(path)
    decoder = _FileDecoder.open(path, forward_limit=2, seek=seek)
    video = VideoSource(decoder, cache_size=0)
    for index in _random_order(len(video), seed=7):
        assert np.array_equal(video.frame(index), reference[index]), index
    if seek:
        assert decoder.n_seeks > 10  # the seeking path was really exercised
        assert decoder._seek_ok  # and every seek landed where expected
    else:
        assert decoder.n_seeks == 0
    video.close()


class _FaultyCapture:
    """A real capture whose seeks land ``seek_shift`` frames early and whose container frame
    count is off by ``count_delta``, like the broken files OpenCV meets in the wild."""

    def __init__(
        self, cap: cv2.VideoCapture, seek_shift: int, count_delta: int, grabs: list[int]
    ) -> None:
        self._cap = cap
        self._seek_shift = seek_shift
        self._count_delta = count_delta
        self._grabs = grabs

    def grab(self) -> bool:
        self._grabs.append(1)
        return self._cap.grab()

    def set(self, prop: int, value: float) -> bool:
        if prop == cv2.CAP_PROP_POS_FRAMES:
            value = max(0, value - self._seek_shift)
        return self._cap.set(prop, value)

    def get(self, prop: int) -> float:
        value = self._cap.get(prop)
        return value + self._count_delta if prop == cv2.CAP_PROP_FRAME_COUNT else value

    def __getattr__(self, name: str):
        return getattr(self._cap, name)


def _install_faulty_capture(monkeypatch, seek_shift: int = 0, count_delta: int = 0) -> list[int]:
    """Make the decoder open ``_FaultyCapture``s; returns a list that grows by one per grab."""
    real_open = video_module._open_capture
    grabs: list[int] = []
    monkeypatch.setattr(
        video_module,
        "_open_capture",
        lambda path: _FaultyCapture(real_open(path), seek_shift, count_delta, grabs),
    )
    return grabs


def test_opening_a_sound_file_does_not_decode_it_all(tmp_path, monkeypatch, long_clip):
    path = write_video(tmp_path / "clip.mp4", long_clip, "mp4v")
    grabs = _install_faulty_capture(monkeypatch)
    with VideoSource.open(path) as video:
        assert len(video) == 40
        assert len(grabs) <= 3  # frame 0 is read directly; then the last frame, then "no more"


@pytest.mark.parametrize(("name", "fourcc"), CODECS)
def test_inexact_seeks_are_detected_and_avoided(tmp_path, monkeypatch, long_clip, name, fourcc):
    path = write_video(tmp_path / name, long_clip, fourcc)
    reference = decode_sequentially(path)
    _install_faulty_capture(monkeypatch, seek_shift=1)
    decoder = _FileDecoder.open(path, forward_limit=2)
    video = VideoSource(decoder, cache_size=0)
    assert len(video) == 40  # the count check saw the misplaced seek and counted by decoding
    for index in _random_order(len(video)):
        assert np.array_equal(video.frame(index), reference[index]), index
    assert not decoder._seek_ok


@pytest.mark.parametrize("count_delta", [-5, -1, 3])
def test_wrong_container_frame_count_is_corrected(tmp_path, monkeypatch, long_clip, count_delta):
    path = write_video(tmp_path / "clip.avi", long_clip)
    reference = decode_sequentially(path)
    _install_faulty_capture(monkeypatch, count_delta=count_delta)
    with VideoSource.open(path, cache_size=0) as video:
        assert len(video) == 40
        for index in (39, 0, 38, 20):
            assert np.array_equal(video.frame(index), reference[index])


def test_iteration_is_sequential_and_does_not_seek(tmp_path, long_clip):
    path = write_video(tmp_path / "clip.mp4", long_clip, "mp4v")
    reference = decode_sequentially(path)
    decoder = _FileDecoder.open(path, forward_limit=0)
    video = VideoSource(decoder, cache_size=4)
    frames = list(video)
    assert len(frames) == len(reference)
    assert all(np.array_equal(a, b) for a, b in zip(frames, reference))
    assert decoder.n_seeks == 0
    assert decoder.n_reopens == 1


def test_frames_are_rgb_and_read_only(video_file):
    path, frames, _ = video_file
    with VideoSource.open(path) as video:
        frame = video.frame(3)
        assert frame.shape == (64, 96, 3) and frame.dtype == np.uint8
        # MJPG is lossy but close; a channel swap (BGR) would be far off on the red square.
        assert np.abs(frame.astype(int) - frames[3]).mean() < 8
        assert not frame.flags.writeable
        with pytest.raises(ValueError):
            frame[0, 0, 0] = 1


def test_lru_cache_is_bounded(video_file):
    path, _, _ = video_file
    with VideoSource.open(path, cache_size=3) as video:
        first = video.frame(0)
        assert video.frame(0) is first  # cached
        for index in (1, 2):
            video.frame(index)
        assert video.frame(0) is first  # still among the last 3
        for index in (3, 4, 5):
            video.frame(index)
        again = video.frame(0)  # evicted: decoded anew, same pixels
        assert again is not first
        assert np.array_equal(again, first)


def test_cached_peeks_without_decoding_or_reordering(video_file):
    path, _, _ = video_file
    with VideoSource.open(path, cache_size=2) as video:
        assert video.cached(0) is None  # never decodes
        first = video.frame(0)
        video.frame(1)
        assert video.cached(0) is first and video.cached(1) is not None
        video.frame(2)  # frame 0 is still the oldest (cached() did not refresh it): evicted
        assert video.cached(0) is None and video.cached(2) is not None
    assert video.cached(2) is None  # closed


def test_concurrent_readers_get_exact_frames(tmp_path, long_clip):
    path = write_video(tmp_path / "clip.avi", long_clip)
    reference = decode_sequentially(path)
    video = VideoSource.open(path, cache_size=2)
    failures: list[int] = []

    def reader(seed: int) -> None:
        for index in _random_order(len(video), seed):
            if not np.array_equal(video.frame(index), reference[index]):
                failures.append(index)

    threads = [threading.Thread(target=reader, args=(seed,)) for seed in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def test_non_ascii_path_with_spaces(tmp_path, long_clip):
    folder = tmp_path / "Vidéos été" / "ß 日本"
    folder.mkdir(parents=True)
    path = write_video(folder / "mon clip ü.avi", long_clip[:5])
    with VideoSource.open(str(path)) as video:
        assert len(video) == 5
        assert np.array_equal(video.frame(4), decode_sequentially(path)[4])


def test_truncated_file_keeps_its_listed_count_and_names_the_missing_frames(tmp_path, long_clip):
    full = write_video(tmp_path / "full.mkv", long_clip)
    data = full.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) * 6 // 10])
    reference = decode_sequentially(cut)
    assert 0 < len(reference) < 40
    with VideoSource.open(cut, cache_size=0) as video:
        assert cv2.VideoCapture(str(cut)).get(cv2.CAP_PROP_FRAME_COUNT) == 40  # header claims 40
        assert len(video) == 40
        missing = [d.index for d in video.damaged if d.problem.startswith("missing")]
        assert missing == list(range(len(reference), 40))
        good = [i for i in range(len(reference)) if video.is_damaged(i) is None]
        for index in _random_order(len(reference)):
            if index in good:
                assert np.array_equal(video.frame(index), reference[index])
        with pytest.raises(FrameDamaged, match=rf"cut\.mkv: frame {len(reference)}: missing"):
            video.frame(len(reference))


def test_undecodable_frame_names_index_and_path(tmp_path, long_clip):
    path = write_video(tmp_path / "clip.avi", long_clip)
    video = VideoSource.open(path, cache_size=0)
    video.frame(0)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])  # the file is cut short after it was opened
    with pytest.raises(VideoError) as info:
        video.frame(35)
    message = str(info.value)
    assert str(path) in message
    assert "frame 35: cannot decode" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("content", "name"),
    [
        (b"", "empty.mp4"),
        (b"this is not a video at all\n" * 40, "notes.avi"),
        (b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8, "garbage.mp4"),
    ],
)
def test_unreadable_files_raise_video_error_naming_path(tmp_path, content, name):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(VideoError, match="cannot open as a video") as info:
        VideoSource.open(path)
    assert str(path) in str(info.value)


def test_mp4_cut_before_its_index_is_refused(tmp_path, long_clip):
    path = write_video(tmp_path / "clip.mp4", long_clip, "mp4v")
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(VideoError, match=r"clip\.mp4"):
        VideoSource.open(path)


def test_zero_frame_video(tmp_path):
    path = tmp_path / "zero.avi"
    writer = cv2.VideoWriter(
        str(path), cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*"MJPG"), 25, (64, 48)
    )
    writer.release()
    with pytest.raises(VideoError) as info:
        VideoSource.open(path)
    assert str(path) in str(info.value)


def test_missing_path(tmp_path):
    path = tmp_path / "nowhere" / "clip.mp4"
    with pytest.raises(VideoError, match="no such video") as info:
        VideoSource.open(path)
    assert str(path) in str(info.value)


def test_single_image_is_not_a_video(frame_folder):
    folder, _, _ = frame_folder
    with pytest.raises(VideoError, match="single image"):
        VideoSource.open(folder / "00000.png")


# --- frame folders --------------------------------------------------------------------------------


def test_frame_folder_is_lossless_and_has_default_fps(frame_folder):
    folder, frames, _ = frame_folder
    with VideoSource.open(folder, cache_size=2) as video:
        assert video.info == VideoInfo(folder, 12, 30.0, 64, 96)
        assert (len(video), video.num_frames, video.fps) == (12, 12, 30.0)
        assert (video.height, video.width) == (64, 96)
        for index in _random_order(12):
            assert np.array_equal(video.frame(index), frames[index])
        assert all(np.array_equal(a, b) for a, b in zip(video, frames))


def test_folder_sorts_numerically_and_ignores_other_files(tmp_path):
    frames, _ = make_moving_square_frames(n=4, h=16, w=16)
    folder = tmp_path / "frames"
    folder.mkdir()
    for frame, name in zip(frames, ["10.PNG", "2.png", "1.jpg", "frame_3.bmp"]):
        ext = "." + name.rsplit(".", 1)[1].lower()
        cv2.imencode(ext, cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))[1].tofile(folder / name)
    (folder / "notes.txt").write_text("not a frame")
    (folder / "._2.png").write_bytes(b"AppleDouble resource fork")
    (folder / "sub.png").mkdir()
    names = [p.name for p in list_frame_files(folder)]
    assert names == ["1.jpg", "2.png", "10.PNG", "frame_3.bmp"]
    with VideoSource.open(folder) as video:
        assert len(video) == 4
        assert np.array_equal(video.frame(1), frames[1])  # 2.png
        assert np.array_equal(video.frame(2), frames[0])  # 10.PNG


def test_natural_sort_key_orders_digit_runs_by_value():
    names = ["img10.jpg", "img2.jpg", "img1.jpg", "img02.jpg", "a.jpg", "img1b.jpg"]
    assert sorted(names, key=natural_sort_key) == [
        "a.jpg",
        "img1.jpg",
        "img1b.jpg",
        "img02.jpg",
        "img2.jpg",
        "img10.jpg",
    ]


def test_non_ascii_folder(tmp_path):
    frames, _ = make_moving_square_frames(n=3, h=16, w=24)
    folder = tmp_path / "kaméra ö" / "日本 語"
    write_frame_folder(folder, frames)
    with VideoSource.open(folder) as video:
        assert np.array_equal(video.frame(2), frames[2])


def test_folder_without_images(tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    (folder / "readme.txt").write_text("no frames here")
    with pytest.raises(VideoError, match="no image files") as info:
        VideoSource.open(folder)
    assert str(folder) in str(info.value)


def test_corrupt_image_in_folder_names_file_and_index(frame_folder):
    folder, frames, _ = frame_folder
    bad = folder / "00005.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n but then nothing useful")
    with VideoSource.open(folder) as video:
        assert np.array_equal(video.frame(4), frames[4])
        with pytest.raises(VideoError, match="frame 5") as info:
            video.frame(5)
    assert str(bad) in str(info.value)


def test_corrupt_first_frame_fails_at_open(frame_folder):
    folder, _, _ = frame_folder
    (folder / "00000.png").write_bytes(b"not a png")
    with pytest.raises(VideoError, match=r"00000\.png"):
        VideoSource.open(folder)


def test_empty_image_file_is_reported_at_open(frame_folder):
    folder, _, _ = frame_folder
    (folder / "00007.png").write_bytes(b"")
    with VideoSource.open(folder) as video:
        assert [(d.index, d.file.name) for d in video.damaged] == [(7, "00007.png")]
        with pytest.raises(FrameDamaged, match=r"00007\.png: frame 7: empty \(0-byte\) file"):
            video.frame(7)


def test_mixed_frame_sizes_name_the_odd_file(frame_folder):
    folder, _, _ = frame_folder
    odd = folder / "00003.png"
    cv2.imencode(".png", np.zeros((10, 20, 3), np.uint8))[1].tofile(odd)
    with VideoSource.open(folder) as video:
        with pytest.raises(VideoError, match="frame 3: wrong size 10x20, expected 64x96") as info:
            video.frame(3)
    assert str(odd) in str(info.value)


# --- API behaviour --------------------------------------------------------------------------------


def test_index_out_of_range(frame_folder):
    folder, _, _ = frame_folder
    with VideoSource.open(folder) as video:
        for index in (12, -1, 10**9):
            with pytest.raises(IndexError, match=r"out of range 0\.\.11"):
                video.frame(index)
        assert video.frame(np.int64(11)).shape == (64, 96, 3)


def test_closed_source_refuses_frames(video_file):
    path, _, _ = video_file
    with VideoSource.open(path) as video:
        video.frame(0)
    with pytest.raises(VideoError, match="closed"):
        video.frame(0)


def test_info_is_frozen_and_cache_size_checked(video_file):
    path, _, _ = video_file
    with VideoSource.open(path) as video:
        with pytest.raises(dataclasses.FrozenInstanceError):
            video.info.num_frames = 3
        assert "12 frames" in repr(video)
    with pytest.raises(ValueError, match="cache_size"):
        VideoSource.open(path, cache_size=-1)


def test_bundled_sample_clip():
    with VideoSource.open(SAMPLE / "bear") as video:
        assert (len(video), video.height, video.width) == (40, 480, 854)
        assert video.frame(39).shape == (480, 854, 3)


# --- damaged input -------------------------------------------------------------------------------


def test_corrupt_jpeg_is_named_not_decoded_to_garbage(tmp_path, capfd):
    frames, _ = make_moving_square_frames(n=8, h=64, w=96)
    folder = tmp_path / "jpegs"
    paths = write_frame_folder(folder, frames, ".jpg")
    corrupt_jpeg(paths[5])
    capfd.readouterr()
    with VideoSource.open(folder) as video:
        assert video.damaged == ()  # found when decoded, not before
        video.frame(4)
        with pytest.raises(FrameDamaged) as info:
            video.frame(5)
        assert info.value.frame == 5 and info.value.path == paths[5]
        assert str(info.value).startswith(f"{paths[5]}: frame 5: corrupt image data (Corrupt JPEG")
        assert video.damaged == (DamagedFrame(5, paths[5], info.value.problem),)
        with pytest.raises(FrameDamaged):  # known now: refused again without decoding
            video.frame(5)
        video.frame(6)
    assert capfd.readouterr().err == ""  # libjpeg's line was captured, not printed


@pytest.mark.parametrize("ext", [".png", ".jpg"])
def test_truncated_image_is_a_damaged_frame(tmp_path, ext):
    frames, _ = make_moving_square_frames(n=5, h=64, w=96)
    paths = write_frame_folder(tmp_path / "f", frames, ext)
    truncate_file(paths[2], 0.6)
    with VideoSource.open(tmp_path / "f") as video:
        with pytest.raises(FrameDamaged, match=rf"{paths[2].name}: frame 2: "):
            video.frame(2)
        assert [d.index for d in video.check()] == [2]


def test_bad_colour_profile_is_not_damage_and_makes_no_noise(tmp_path, capfd):
    frames, _ = make_moving_square_frames(n=3, h=64, w=96)
    paths = write_frame_folder(tmp_path / "f", frames, ".png")
    for path in paths:
        add_bad_iccp_chunk(path)
    capfd.readouterr()
    with VideoSource.open(tmp_path / "f") as video:
        assert all(np.array_equal(a, b) for a, b in zip(video, frames))
        assert video.check() == ()
    assert capfd.readouterr().err == ""


@pytest.mark.parametrize("suffix", [".avi", ".mkv"])
def test_video_cut_to_30_percent_names_its_last_and_missing_frames(tmp_path, long_clip, suffix):
    frames = long_clip[:20]
    full = write_video(tmp_path / f"full{suffix}", frames)
    cut = truncate_file(full, 0.3, tmp_path / f"cut{suffix}")
    reference = decode_sequentially(cut)  # what plain OpenCV gives: a few frames, no warning
    assert 0 < len(reference) < 20
    with VideoSource.open(cut) as video:
        assert len(video) == 20
        damaged = {d.index: d.problem for d in video.damaged}
        assert set(damaged) >= set(range(len(reference), 20))
        stops = f"missing: decoding stops at frame {len(reference)} (truncated or corrupt file"
        assert all(damaged[i].startswith(stops) for i in range(len(reference), 20))
        last = len(reference) - 1
        if suffix == ".avi":  # MJPG in AVI: the last frame is half there ("overread")
            assert damaged[last].startswith("incomplete: decoding stops inside this frame")
        good = [i for i in range(len(reference)) if i not in damaged]
        for i in good:
            assert np.array_equal(video.frame(i), reference[i])
        assert summarize_damaged(video.damaged)[-1] == (
            f"{cut}: frames {len(reference)}-19: {damaged[19]}"
        )


def test_corrupt_frame_inside_a_video_file_is_named(tmp_path, long_clip):
    path = write_video(tmp_path / "clip.avi", long_clip)
    data = bytearray(path.read_bytes())
    chunks = [i for i in range(len(data) - 10) if data[i : i + 4] == b"00dc"]
    frame_chunks = [i for i in chunks if data[i + 8 : i + 10] == b"\xff\xd8"]  # JPEG data
    assert len(frame_chunks) == 40
    victim = frame_chunks[30] + 8 + 600  # inside frame 30's entropy-coded data
    data[victim : victim + 40] = b"\xff\x00" * 20  # all-ones bits: invalid Huffman codes
    path.write_bytes(bytes(data))
    reference = decode_sequentially(write_video(tmp_path / "good.avi", long_clip))
    with VideoSource.open(path, cache_size=0) as video:
        assert len(video) == 40
        damaged = [d.index for d in video.check()]
        assert damaged[0] == 30  # the corrupt frame is the first one named
        assert all(np.array_equal(video.frame(i), reference[i]) for i in (0, 15, 29))
        with pytest.raises(FrameDamaged, match=r"clip\.avi: frame 30: "):
            video.frame(30)


def test_summarize_damaged_folds_runs():
    a, b = Path("a.avi"), Path("b.jpg")
    damaged = [
        DamagedFrame(2, b, "corrupt"),
        DamagedFrame(5, a, "missing"),
        DamagedFrame(6, a, "missing"),
        DamagedFrame(7, a, "missing"),
        DamagedFrame(9, a, "missing"),
    ]
    assert summarize_damaged(damaged) == [
        "b.jpg: frame 2: corrupt",
        "a.avi: frames 5-7: missing",
        "a.avi: frame 9: missing",
    ]


def test_native_stderr_capture_keeps_other_text(capfd):
    import os

    from tracker_core.native_log import capture_native_stderr, fold_messages

    capfd.readouterr()
    with capture_native_stderr() as lines:
        os.write(2, b"[mjpeg @ 0x55c8c1295a00] overread 8\n")
        os.write(2, b"Corrupt JPEG data: 3 extraneous bytes before marker 0xd9\n")
        os.write(2, b"someone else's message\n")
    assert lines == [
        "[mjpeg @ 0x55c8c1295a00] overread 8",
        "Corrupt JPEG data: 3 extraneous bytes before marker 0xd9",
    ]
    assert capfd.readouterr().err == "someone else's message\n"
    assert fold_messages(lines) == (
        "mjpeg: overread 8; Corrupt JPEG data: 3 extraneous bytes before marker 0xd9"
    )
