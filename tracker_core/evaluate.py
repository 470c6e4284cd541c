"""Quality measures (official DAVIS J and F, keypoint PCK) and the dev-set evaluation loop.

J is the region IoU (empty union -> 1). F is the boundary F-measure: 1-pixel boundaries of
prediction and ground truth, matched within a disk of radius ``ceil(0.008 * image diagonal)``.
Per sequence, first and last frames are excluded; J&F = (mean J + mean F) / 2 averaged over objects.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from skimage.morphology import disk

from tracker_core.errors import DatasetError
from tracker_core.labels import FrameLabels
from tracker_core.masks import load_mask
from tracker_core.propagate import FeatureCache
from tracker_core.propagator import Propagator, load_propagator
from tracker_core.video import VideoSource

# ------------------------------------------------------------------------------ measures


def jaccard(pred: np.ndarray, gt: np.ndarray) -> float:
    """IoU of two (H, W) bool masks; 1.0 when both are empty."""
    union = np.logical_or(pred, gt).sum()
    if union == 0:
        return 1.0
    return float(np.logical_and(pred, gt).sum() / union)


def boundary_map(mask: np.ndarray) -> np.ndarray:
    """(H, W) bool mask -> (H, W) bool 1-pixel boundary (DAVIS ``seg2bmap`` at native size).

    A pixel is on the boundary when it is foreground and its right, bottom or bottom-right
    neighbour differs from it.
    """
    m = mask.astype(bool)
    e = np.zeros_like(m)
    s = np.zeros_like(m)
    se = np.zeros_like(m)
    e[:, :-1] = m[:, 1:]
    s[:-1, :] = m[1:, :]
    se[:-1, :-1] = m[1:, 1:]
    b = (m ^ e) | (m ^ s) | (m ^ se)
    b[-1, :] = m[-1, :] ^ e[-1, :]
    b[:, -1] = m[:, -1] ^ s[:, -1]
    b[-1, -1] = False
    return b


def _disk(radius: int) -> np.ndarray:
    return disk(radius).astype(np.uint8)


def f_measure(pred: np.ndarray, gt: np.ndarray, bound_th: float = 0.008) -> float:
    """Boundary F-measure of two (H, W) bool masks (DAVIS definition)."""
    h, w = gt.shape
    radius = math.ceil(bound_th * math.hypot(h, w))
    fg_b = boundary_map(pred)
    gt_b = boundary_map(gt)
    n_fg, n_gt = int(fg_b.sum()), int(gt_b.sum())
    if n_fg == 0 and n_gt == 0:
        return 1.0
    if n_fg == 0 or n_gt == 0:
        return 0.0
    disk = _disk(radius)
    fg_dil = cv2.dilate(fg_b.astype(np.uint8), disk).astype(bool)
    gt_dil = cv2.dilate(gt_b.astype(np.uint8), disk).astype(bool)
    precision = float((fg_b & gt_dil).sum()) / n_fg
    recall = float((gt_b & fg_dil).sum()) / n_gt
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


@dataclass(frozen=True)
class SequenceScore:
    """Scores for one sequence: per-object mean J and F, and per-frame J (object-averaged)."""

    name: str
    j: float
    f: float
    frame_j: tuple[float, ...]
    ms_per_frame: float = float("nan")

    @property
    def jf(self) -> float:
        return (self.j + self.f) / 2


def score_sequence(
    name: str, preds: Sequence[np.ndarray], gts: Sequence[np.ndarray], ms_per_frame: float = np.nan
) -> SequenceScore:
    """Score (H, W) uint8 id masks against ground truth, excluding the first and last frames.

    Objects are the ids present in the ground truth of any frame.
    """
    if len(preds) != len(gts):
        raise ValueError(f"{name}: {len(preds)} predictions for {len(gts)} ground-truth frames")
    ids = sorted({int(v) for g in gts for v in np.unique(g) if v != 0})
    frames = range(1, len(gts) - 1) if len(gts) > 2 else range(len(gts))
    js = np.zeros((len(ids), len(gts)))
    fs = np.zeros((len(ids), len(gts)))
    for oi, obj in enumerate(ids):
        for t in frames:
            p, g = preds[t] == obj, gts[t] == obj
            js[oi, t] = jaccard(p, g)
            fs[oi, t] = f_measure(p, g)
    sel = list(frames)
    frame_j = tuple(float(js[:, t].mean()) if ids else 1.0 for t in range(len(gts)))
    j = float(js[:, sel].mean(axis=1).mean()) if ids else 1.0
    f = float(fs[:, sel].mean(axis=1).mean()) if ids else 1.0
    return SequenceScore(name, j, f, frame_j, ms_per_frame)


def pck(
    pred: np.ndarray,
    gt: np.ndarray,
    visible: np.ndarray,
    alpha: float,
    size: float | None = None,
) -> tuple[int, int]:
    """Correct and total counts of visible ground-truth joints within ``alpha * size`` pixels.

    pred, gt: (P, 2) xy pixels; visible: (P,) bool (ground-truth visibility: joints not visible
    in the ground truth are not counted, whatever is predicted for them). ``size`` defaults to
    ``0.6 *`` the diagonal of the box around the visible ground-truth joints (the JHMDB
    convention of CRW / UVC); pass ``sqrt(mask area)`` for BADJA's own. A missing prediction
    (NaN) counts as wrong.
    """
    vis = visible.astype(bool)
    if vis.sum() == 0:
        return 0, 0
    pts = gt[vis]
    if size is None:
        size = 0.6 * float(np.hypot(*(pts.max(axis=0) - pts.min(axis=0))))
    thr = alpha * size
    d = np.linalg.norm(pred[vis] - pts, axis=1)
    correct = int(np.nansum(np.where(np.isnan(d), 0, d <= thr)))
    return correct, int(vis.sum())


# ------------------------------------------------------------------------------ DAVIS loop


@dataclass(frozen=True)
class EvalResult:
    """Scores per sequence, and J&F after each simulated-correction round."""

    sequences: tuple[SequenceScore, ...]
    rounds: tuple[float, ...] = field(default_factory=tuple)
    # with ``until``: per sequence, (corrected frames, frames) to bring every frame to that J
    effort: tuple[tuple[int, int], ...] = field(default_factory=tuple)

    @property
    def corrections_per_100(self) -> tuple[float, ...]:
        """Per sequence: corrected frames per 100 frames (empty without ``until``)."""
        return tuple(100.0 * c / n for c, n in self.effort)

    @property
    def j(self) -> float:
        return float(np.mean([s.j for s in self.sequences]))

    @property
    def f(self) -> float:
        return float(np.mean([s.f for s in self.sequences]))

    @property
    def jf(self) -> float:
        return (self.j + self.f) / 2

    @property
    def ms_per_frame(self) -> float:
        return float(np.nanmean([s.ms_per_frame for s in self.sequences]))


FRAMES_DIR = ("JPEGImages", "480p")
ANNOTATIONS_DIR = ("Annotations", "480p")


def check_davis_root(root: Path) -> None:
    """Raise DatasetError (naming the path) unless ``root`` holds ``JPEGImages/480p`` and
    ``Annotations/480p`` folders."""
    if not root.is_dir():
        raise DatasetError("no such DAVIS root folder", root)
    for parts in (FRAMES_DIR, ANNOTATIONS_DIR):
        folder = root.joinpath(*parts)
        if not folder.is_dir():
            raise DatasetError(
                f"missing: not a DAVIS root (it needs {'/'.join(FRAMES_DIR)} and "
                f"{'/'.join(ANNOTATIONS_DIR)})",
                folder,
            )


def list_sequences(root: Path) -> list[str]:
    """Sequence names under a DAVIS root (``sequences.txt`` if present, else folder names).

    Raises:
        DatasetError: not a DAVIS root, or it holds no sequence.
    """
    check_davis_root(root)
    listing = root / "sequences.txt"
    if listing.is_file():
        names = [s.strip() for s in listing.read_text().split() if s.strip()]
    else:
        names = sorted(p.name for p in root.joinpath(*FRAMES_DIR).iterdir() if p.is_dir())
    if not names:
        raise DatasetError("holds no sequence folders", root.joinpath(*FRAMES_DIR))
    return names


def load_ground_truth(root: Path, name: str) -> list[np.ndarray]:
    """(H, W) uint8 id masks for every frame of a DAVIS sequence.

    Raises:
        DatasetError: the sequence has no annotation folder or no PNG in it.
        MaskError: an annotation cannot be read.
    """
    folder = root.joinpath(*ANNOTATIONS_DIR, name)
    if not folder.is_dir():
        raise DatasetError("no such annotation folder", folder)
    files = sorted(folder.glob("*.png"))
    if not files:
        raise DatasetError("annotation folder holds no PNG masks", folder)
    return [load_mask(p) for p in files]


def ground_truth_lookup(root: Path, name: str) -> Callable[[int], np.ndarray | None]:
    """Frame index -> the DAVIS sequence's (H, W) uint8 id mask ``NNNNN.png``, or None where
    that frame has no annotation (BADJA sequences are scored on DAVIS frames)."""
    folder = root.joinpath(*ANNOTATIONS_DIR, name)

    def mask(frame: int) -> np.ndarray | None:
        file = folder / f"{frame:05d}.png"
        return load_mask(file) if file.is_file() else None

    return mask


def frame_jaccard(pred: np.ndarray, gt: np.ndarray, ids: Sequence[int]) -> float:
    """Mean J over the objects ``ids`` of one frame's (H, W) id masks (1.0 without objects)."""
    if not len(ids):
        return 1.0
    return float(np.mean([jaccard(pred == obj, gt == obj) for obj in ids]))


def propagate_with_corrections(
    frames: Callable[[int], np.ndarray],
    gts: Sequence[np.ndarray],
    propagator: Propagator,
    corrections: int = 0,
    pick: str = "oracle",
    until: float | None = None,
) -> Iterator[tuple[list[np.ndarray], float, set[int]]]:
    """Propagate from frame 0's ground truth; then repeatedly replace one frame with ground truth
    and resume forward from it up to the next corrected frame (frames already encoded come from
    the propagator's feature cache, as in the GUI).

    ``pick="oracle"`` corrects the worst-J frame (an annotator who inspects every frame);
    ``pick="confidence"`` corrects the least-confident frame, using only what the tool shows
    (its "next uncertain frame"). With ``until`` (a J), only frames whose J (mean over the
    objects) is below it are corrected -- the annotator, shown the tool's least-confident
    frames in turn, passes over the ones that are already good -- and the rounds end when every
    frame reaches it (or after ``corrections`` rounds). Yields (predicted masks, ms per
    propagated frame, keyframes) after the first run and after each correction round.
    """
    if pick not in ("oracle", "confidence"):
        raise ValueError(f"pick must be 'oracle' or 'confidence', got {pick!r}")
    ids = sorted({int(v) for g in gts for v in np.unique(g) if v != 0})
    n = len(gts)
    preds: list[np.ndarray] = [gts[0].copy()] + [np.zeros_like(gts[0]) for _ in range(n - 1)]
    confidence = np.ones(n)
    keyframes = {0}
    seconds, count = 0.0, 0
    cache = propagator.new_cache()

    def run_from(start: int) -> None:
        nonlocal seconds, count
        later = [k for k in keyframes if k > start]
        stop = min(later) if later else n
        refs = {k: FrameLabels(mask=gts[k]) for k in keyframes}
        for out in propagator.propagate(frames, start, stop, refs, {}, cache=cache):
            preds[out.index] = out.labels.mask
            confidence[out.index] = out.confidence
            seconds += out.seconds
            count += 1

    run_from(0)
    yield list(preds), 1000 * seconds / max(count, 1), set(keyframes)
    for _ in range(corrections):
        candidates = [t for t in range(n) if t not in keyframes]
        if until is not None:
            candidates = [t for t in candidates if frame_jaccard(preds[t], gts[t], ids) < until]
        if not candidates:
            break
        if pick == "oracle":
            badness = {t: jaccard(preds[t] > 0, gts[t] > 0) for t in candidates}
        else:
            badness = {t: float(confidence[t]) for t in candidates}
        worst = min(candidates, key=badness.__getitem__)
        keyframes.add(worst)
        preds[worst] = gts[worst].copy()
        run_from(worst)
        yield list(preds), 1000 * seconds / max(count, 1), set(keyframes)


def evaluate_davis(
    root: Path,
    propagator: Propagator | None = None,
    sequences: Sequence[str] | None = None,
    corrections: int = 0,
    report: Callable[[str], None] | None = None,
    pick: str = "oracle",
    until: float | None = None,
) -> EvalResult:
    """Propagate every sequence from its frame-0 ground truth and score it.

    With ``corrections`` > 0, J&F (mean over sequences) is also recorded after each round.
    With ``until`` (a J, e.g. 0.85), frames are corrected (picked by ``pick``, at most
    ``corrections`` of them, or every frame when ``corrections`` is 0) until every frame of a
    sequence has at least that J; ``EvalResult.effort`` counts them. ``propagator`` defaults
    to the default preset with the bundled model.
    """
    check_davis_root(root)
    prop = propagator if propagator is not None else load_propagator()
    names = list(sequences) if sequences else list_sequences(root)
    final: list[SequenceScore] = []
    per_round: list[list[float]] = []
    effort: list[tuple[int, int]] = []
    for name in names:
        gts = load_ground_truth(root, name)
        with VideoSource.open(root.joinpath(*FRAMES_DIR, name)) as video:
            if len(video) != len(gts):
                raise DatasetError(
                    f"{len(gts)} annotations for the {len(video)} frames of {name}",
                    root.joinpath(*ANNOTATIONS_DIR, name),
                )
            t0 = time.perf_counter()
            cap = corrections if until is None or corrections > 0 else len(gts)
            rounds = list(propagate_with_corrections(video.frame, gts, prop, cap, pick, until))
            wall = time.perf_counter() - t0
        if until is not None:
            effort.append((len(rounds[-1][2]) - 1, len(gts)))
        scores = [score_sequence(name, preds, gts, ms) for preds, ms, _ in rounds]
        for r, sc in enumerate(scores):
            if len(per_round) <= r:
                per_round.append([])
            per_round[r].append(sc.jf)
        last = scores[-1]
        final.append(last)
        if report:
            extra = ""
            if until is not None:
                c, n = effort[-1]
                extra = f"  {c} corrections / {n} frames ({100 * c / n:.1f} per 100)"
            report(
                f"{name:20s} J {100 * last.j:5.1f}  F {100 * last.f:5.1f}  J&F {100 * last.jf:5.1f}"
                f"  {last.ms_per_frame:6.1f} ms/frame  ({wall:.1f} s){extra}"
            )
    if until is not None:  # rounds differ in number per sequence: the mean is not comparable
        return EvalResult(tuple(final), (), tuple(effort))
    rounds_mean = tuple(float(np.mean(r)) for r in per_round if len(r) == len(names))
    return EvalResult(tuple(final), rounds_mean)


# ------------------------------------------------------------------------------ keypoints

# The 20 of BADJA's 37 joint slots that its annotations use (BADJA's ``SMALJointInfo``:
# legs 8-10, 12-14, 18-20, 22-24; neck 15; tail 25, 28, 31; jaw 32, nose 33; ears 35, 36).
# The other 17 slots are never labelled.
BADJA_JOINTS = (8, 9, 10, 12, 13, 14, 15, 18, 19, 20, 22, 23, 24, 25, 28, 31, 32, 33, 35, 36)


@dataclass(frozen=True)
class BadjaFrame:
    """One labelled BADJA frame, joints in 480p pixels as (x, y)."""

    frame: int
    joints: np.ndarray  # (P, 2) float32 xy
    visible: np.ndarray  # (P,) bool


def load_badja(
    path: Path, frame_hw: tuple[int, int], joints: Sequence[int] = BADJA_JOINTS
) -> list[BadjaFrame]:
    """Read a BADJA json (joints as [row, col] at 1080p) and scale to ``frame_hw``.

    Raises:
        DatasetError: the file is missing, unreadable, or not a list of labelled frames.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise DatasetError("no such BADJA keypoint file", path) from exc
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise DatasetError(f"cannot read BADJA keypoints ({exc})", path) from exc
    scale = frame_hw[0] / 1080.0
    out = []
    try:
        for item in data:
            digits = "".join(c for c in Path(item["image_path"]).stem if c.isdigit())
            rc = np.asarray(item["joints"], dtype=np.float32)[list(joints)]
            vis = np.asarray(item["visibility"], dtype=bool)[list(joints)]
            xy = np.stack([rc[:, 1], rc[:, 0]], axis=1) * scale
            out.append(BadjaFrame(int(digits), xy, vis))
    except (KeyError, TypeError, IndexError, ValueError) as exc:
        problem = f"not a BADJA keypoint file ({type(exc).__name__}: {exc})"
        raise DatasetError(problem, path) from exc
    if not out:
        raise DatasetError("holds no labelled frames", path)
    return sorted(out, key=lambda b: b.frame)


def expand_badja_paths(paths: Sequence[Path]) -> list[Path]:
    """BADJA json files named directly or held by the given folders, in order.

    Raises:
        DatasetError: a path does not exist, or a folder holds no ``.json``.
    """
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(path.glob("*.json"))
            if not found:
                raise DatasetError("folder holds no BADJA .json files", path)
            out.extend(found)
        elif path.exists():
            out.append(path)
        else:
            raise DatasetError("no such BADJA keypoint file or folder", path)
    return out


@dataclass(frozen=True)
class KeypointFrameResult:
    """One scored frame: predicted and ground-truth joints (P, 2) xy, ground-truth visibility
    (P,) bool, and the ground-truth mask area in pixels (nan when no mask was given)."""

    frame: int
    pred: np.ndarray
    gt: np.ndarray
    visible: np.ndarray
    mask_area: float = float("nan")


@dataclass(frozen=True)
class KeypointResult:
    """Per-frame keypoint results of one sequence (labelled frames after the first)."""

    frames: tuple[KeypointFrameResult, ...]

    def counts(self, alpha: float, reference: str = "box") -> tuple[int, int]:
        """(correct, total) visible joints at threshold ``alpha * size``: ``reference="box"``:
        size = 0.6 * diagonal of the visible-joint box (JHMDB / CRW); ``"area"``: sqrt of the
        ground-truth mask area (BADJA's own; frames without a mask are skipped)."""
        if reference not in ("box", "area"):
            raise ValueError(f"reference must be 'box' or 'area', got {reference!r}")
        correct = total = 0
        for f in self.frames:
            size = None
            if reference == "area":
                if not math.isfinite(f.mask_area):
                    continue
                size = math.sqrt(f.mask_area)
            c, t = pck(f.pred, f.gt, f.visible, alpha, size)
            correct, total = correct + c, total + t
        return correct, total

    def pck(self, alpha: float, reference: str = "box") -> float:
        """Fraction of visible joints within the threshold (0.0 when none is visible)."""
        c, t = self.counts(alpha, reference)
        return c / t if t else 0.0


def evaluate_keypoints(
    video: VideoSource,
    labelled: Sequence[BadjaFrame],
    propagator: Propagator | None = None,
    *,
    start_mask: np.ndarray | None = None,
    gt_masks: Callable[[int], np.ndarray | None] | None = None,
    cache: FeatureCache | None = None,
) -> KeypointResult:
    """Propagate keypoints from the first labelled frame to the last one and score them.

    ``start_mask`` ((H, W), nonzero = the animal) is the mask of the first labelled frame: it is
    propagated alongside as a second object (mask id 1; the joints are object 2), so settings
    that use a joint's mask can; no mask of a later frame is ever given to the propagator.
    ``gt_masks(frame)`` gives ground-truth masks only for the "area" PCK threshold.
    """
    prop = propagator if propagator is not None else load_propagator()
    first = labelled[0]
    pts = np.concatenate([first.joints, first.visible[:, None].astype(np.float32)], axis=1)
    pts[~first.visible, :2] = np.nan
    mask = None if start_mask is None else (start_mask > 0).astype(np.uint8)
    refs = {first.frame: FrameLabels(mask=mask, keypoints={2: pts.astype(np.float32)})}
    wanted = {b.frame: b for b in labelled[1:]}
    if not wanted:
        return KeypointResult(())
    stop = max(wanted) + 1
    frames = []
    for out in prop.propagate(video.frame, first.frame, stop, refs, {2: len(pts)}, cache=cache):
        gt = wanted.get(out.index)
        if gt is None:
            continue
        gt_mask = gt_masks(out.index) if gt_masks is not None else None
        area = float((gt_mask > 0).sum()) if gt_mask is not None else float("nan")
        pred = out.labels.keypoints[2][:, :2].copy()
        frames.append(KeypointFrameResult(out.index, pred, gt.joints, gt.visible, area))
    return KeypointResult(tuple(frames))
