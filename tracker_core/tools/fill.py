"""Fill hole: click a background region enclosed by labels to fill it with the active object
(a region that reaches the image border is not a hole). One click = one undo step."""

from __future__ import annotations

import cv2
import numpy as np

from tracker_core.tools.base import BaseTool, PointerEvent, ToolContext, clamp, mask_target


def enclosed_region(mask: np.ndarray, x: int, y: int) -> np.ndarray | None:
    """``(H, W) bool`` the 4-connected background region of ``mask`` containing pixel
    ``(x, y)``; None when that pixel is labelled or the region touches the image border."""
    if mask[y, x] != 0:
        return None
    _, labels = cv2.connectedComponents((mask == 0).astype(np.uint8), connectivity=4)
    region = labels == labels[y, x]
    border = region[0].any() or region[-1].any() or region[:, 0].any() or region[:, -1].any()
    return None if border else region


class FillTool(BaseTool):
    def press(self, ctx: ToolContext, event: PointerEvent) -> None:
        if event.button != "left":
            return
        spec = mask_target(ctx)
        if spec is None:
            return
        x, y = (round(v) for v in clamp(ctx, event.x, event.y))
        mask = ctx.session.labels(ctx.frame).mask
        if mask is None:
            return
        region = enclosed_region(mask, x, y)
        if region is None:
            what = "is already labelled" if mask[y, x] else "reaches the image border"
            ctx.message(f"Not a hole: that region {what}; click inside an enclosed gap")
            return
        new = np.array(mask)
        new[region] = spec.id
        ctx.session.set_mask(ctx.frame, new, label="Fill hole")
