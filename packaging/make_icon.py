"""Draw the Trackpaint application icon (256x256 RGBA PNG) with OpenCV: a dark rounded tile,
a film strip, a painted red blob (the DAVIS colour of object 1) and its dotted track.

Usage: ``.venv/bin/python packaging/make_icon.py [OUT.png]`` (default: packaging/trackpaint.png).
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import cv2
import numpy as np

SIZE = 256
SCALE = 4  # draw at 4x and downsample for smooth edges


def rounded_tile(size: int, radius: int) -> np.ndarray:
    """``(size, size) uint8`` alpha of a rounded square."""
    alpha = np.zeros((size, size), np.uint8)
    cv2.rectangle(alpha, (radius, 0), (size - 1 - radius, size - 1), 255, -1)
    cv2.rectangle(alpha, (0, radius), (size - 1, size - 1 - radius), 255, -1)
    for cx in (radius, size - 1 - radius):
        for cy in (radius, size - 1 - radius):
            cv2.circle(alpha, (cx, cy), radius, 255, -1, cv2.LINE_AA)
    return alpha


def draw_icon() -> np.ndarray:
    """The icon as ``(256, 256, 4) uint8`` BGRA."""
    s = SIZE * SCALE
    bgr = np.zeros((s, s, 3), np.uint8)
    bgr[:] = (58, 44, 38)  # dark slate
    # film strip across the middle, with sprocket holes
    top, bottom = int(0.30 * s), int(0.70 * s)
    cv2.rectangle(bgr, (0, top), (s, bottom), (92, 78, 70), -1)
    hole = int(0.045 * s)
    for x in range(int(0.04 * s), s, int(0.11 * s)):
        for y in (top + hole // 2, bottom - hole - hole // 2):
            cv2.rectangle(bgr, (x, y), (x + hole, y + hole), (40, 30, 26), -1)
    # dotted track of the object, then the painted blob at its end
    points = [(int(0.16 * s), int(0.62 * s)), (int(0.33 * s), int(0.52 * s))]
    points += [(int(0.48 * s), int(0.55 * s)), (int(0.60 * s), int(0.47 * s))]
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        for t in np.linspace(0.0, 1.0, 6):
            centre = (int(x0 + t * (x1 - x0)), int(y0 + t * (y1 - y0)))
            cv2.circle(bgr, centre, int(0.018 * s), (220, 220, 235), -1, cv2.LINE_AA)
    blob = np.array(
        [[0.62, 0.36], [0.78, 0.30], [0.88, 0.42], [0.84, 0.60], [0.68, 0.64], [0.60, 0.50]]
    )
    pts = (blob * s).astype(np.int32)
    cv2.fillPoly(bgr, [pts], (0, 0, 200), cv2.LINE_AA)  # DAVIS object 1 red (128, 0, 0) brighter
    cv2.polylines(bgr, [pts], True, (235, 235, 255), int(0.012 * s), cv2.LINE_AA)
    # the brush: handle and tip touching the blob
    cv2.line(
        bgr,
        (int(0.97 * s), int(0.05 * s)),
        (int(0.80 * s), int(0.26 * s)),
        (40, 170, 240),
        int(0.05 * s),
        cv2.LINE_AA,
    )
    cv2.line(
        bgr,
        (int(0.80 * s), int(0.26 * s)),
        (int(0.75 * s), int(0.33 * s)),
        (210, 210, 210),
        int(0.06 * s),
        cv2.LINE_AA,
    )
    alpha = rounded_tile(s, int(0.18 * s))
    bgra = np.dstack([bgr, alpha])
    return cv2.resize(bgra, (SIZE, SIZE), interpolation=cv2.INTER_AREA)


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else Path(__file__).with_name("trackpaint.png")
    if not cv2.imwrite(str(out), draw_icon()):
        print(f"cannot write {out}", file=sys.stderr)
        return 1
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
