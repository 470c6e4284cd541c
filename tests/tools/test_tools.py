"""Every tool driven through the Qt-free Tool protocol: events in, Session commands out."""

from __future__ import annotations

import numpy as np
import pytest

from tests.tools.conftest import disk_image
from tracker_core.project import FrameState
from tracker_core.tools import TOOLS, PlainContext, PointerEvent, tool_spec
from tracker_core.tools.fill import enclosed_region
from tracker_core.tools.keypoints import next_unplaced
from tracker_core.tools.smart import SmartSelectTool, mask_box


def ev(x: float, y: float, button: str = "left", **kw) -> PointerEvent:
    return PointerEvent(x, y, button, **kw)  # type: ignore[arg-type]


def drag(tool, ctx, points, button: str = "left") -> None:
    tool.press(ctx, ev(*points[0], button))
    for p in points[1:]:
        tool.move(ctx, ev(*p, "none"))
    tool.release(ctx, ev(*points[-1], button))


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def test_registry_names_shortcuts_and_factories_are_unique_and_complete() -> None:
    names = [s.name for s in TOOLS]
    assert len(set(names)) == len(names)
    keys = [s.shortcut for s in TOOLS]
    assert len(set(keys)) == len(keys)
    for spec in TOOLS:
        tool = spec.factory()
        for method in ("press", "move", "release", "double_click", "key", "cancel", "overlay"):
            assert callable(getattr(tool, method))
        assert spec.cursor in ("brush", "cross", "point") and spec.edits in ("mask", "keypoints")
        assert spec.label and spec.tip and spec.mouse and spec.hint and spec.icon
    assert tool_spec("smart").edits == "mask"
    with pytest.raises(ValueError, match="unknown tool"):
        tool_spec("lasso")


def test_brush_with_no_object_creates_one_and_keeps_the_stroke(ctx: PlainContext) -> None:
    brush = tool_spec("brush").factory()
    drag(brush, ctx, [(10, 10), (20, 10)])
    session = ctx.session
    assert [o.name for o in session.project.objects] == ["object 1"]
    assert ctx.active_object is not None and ctx.active_object.name == "object 1"
    mask = session.project.labels(0).mask
    assert mask[10, 10] == mask[10, 20] == ctx.active_object.id
    assert "Created mask object" in ctx.messages[0]
    assert session.project.state(0) == FrameState.PAINTED
    # one drag = one undo step (the object creation is the step before)
    assert session.undo_label == "Paint"
    assert brush.overlay(ctx).brush == (20, 10, 3.0, False)


def test_right_drag_and_eraser_erase_only_the_active_object(ctx: PlainContext) -> None:
    session = ctx.session
    a = session.add_object("a")
    b = session.add_object("b")
    ctx.set_active_object(a.id)
    session.paint_stroke(0, a.id, [(10, 10), (30, 10)], 4)
    session.paint_stroke(0, b.id, [(10, 30)], 4)
    brush = tool_spec("brush").factory()
    drag(brush, ctx, [(10, 10), (12, 10)], button="right")
    assert session.project.labels(0).mask[10, 10] == 0
    eraser = tool_spec("eraser").factory()
    drag(eraser, ctx, [(30, 10), (10, 30)])
    mask = session.project.labels(0).mask
    assert mask[10, 30] == 0 and mask[30, 10] == b.id  # b untouched


def test_mask_tool_on_a_keypoint_object_explains_instead_of_painting(ctx: PlainContext) -> None:
    session = ctx.session
    session.add_object("m")
    kp = session.add_object("dog", kind="keypoints", keypoint_names=("nose",))
    ctx.set_active_object(kp.id)
    drag(tool_spec("brush").factory(), ctx, [(5, 5), (9, 9)])
    assert "keypoint object" in ctx.messages[-1]
    assert not session.project.labels(0).mask.any()


def test_polygon_vertices_handles_backspace_and_close_on_first_vertex(ctx: PlainContext) -> None:
    poly = tool_spec("polygon").factory()
    for x, y in [(10, 10), (40, 10), (40, 40), (70, 60)]:
        poly.press(ctx, ev(x, y))
        poly.release(ctx, ev(x, y))
    poly.move(ctx, ev(20, 30, "none"))
    over = poly.overlay(ctx)
    assert over.handles == ((10, 10), (40, 10), (40, 40), (70, 60))
    assert over.path[-1] == (20, 30)  # the rubber-band segment to the pointer
    assert poly.key(ctx, "backspace") and len(poly.points) == 3
    assert poly.interacting
    poly.press(ctx, ev(11, 11, pick=3))  # on the first vertex: fills
    assert not poly.interacting and poly.overlay(ctx).handles == ()
    mask = ctx.session.project.labels(0).mask
    assert mask[20, 30] != 0 and mask[55, 60] == 0
    assert ctx.session.undo_label == "Fill polygon"


def test_polygon_enter_double_click_escape_and_too_few_points(ctx: PlainContext) -> None:
    poly = tool_spec("polygon").factory()
    for p in [(5, 5), (25, 5), (25, 25)]:
        poly.press(ctx, ev(*p))
    assert poly.key(ctx, "enter")
    assert ctx.session.project.labels(0).mask[10, 20] != 0
    poly.press(ctx, ev(50, 50))
    poly.press(ctx, ev(60, 50))
    poly.double_click(ctx, ev(60, 50))
    assert "at least 3 points" in ctx.messages[-1]
    poly.press(ctx, ev(50, 50))
    assert poly.key(ctx, "escape") and poly.points == []
    assert not poly.key(ctx, "escape")  # nothing left to cancel: the key is not used
    poly.press(ctx, ev(50, 50))
    poly.press(ctx, ev(1, 1, "right"))
    assert poly.points == []


def test_fill_hole_fills_an_enclosed_gap_and_refuses_the_outside(ctx: PlainContext) -> None:
    session = ctx.session
    spec = session.add_object("ring")
    ctx.set_active_object(spec.id)
    mask = np.zeros((64, 80), np.uint8)
    mask[10:30, 10:30] = spec.id
    mask[15:25, 15:25] = 0
    session.set_mask(0, mask)
    fill = tool_spec("fill").factory()
    fill.press(ctx, ev(2, 2))
    assert "border" in ctx.messages[-1]
    fill.press(ctx, ev(20, 20))
    assert (session.project.labels(0).mask[10:30, 10:30] == spec.id).all()
    assert session.undo_label == "Fill hole"
    fill.press(ctx, ev(20, 20))
    assert "already labelled" in ctx.messages[-1]
    assert enclosed_region(np.zeros((4, 4), np.uint8), 1, 1) is None


def test_keypoints_place_next_drag_toggle_delete(ctx: PlainContext) -> None:
    session = ctx.session
    spec = session.add_object("animal", kind="keypoints", keypoint_names=("nose", "tail", "paw"))
    ctx.set_active_object(spec.id)
    tool = tool_spec("keypoints").factory()
    tool.press(ctx, ev(10, 12))
    assert ctx.active_point == 1
    tool.press(ctx, ev(40, 30))
    assert ctx.active_point == 2
    pts = session.project.labels(0).keypoints[spec.id]
    np.testing.assert_allclose(pts[:2, :2], [[10, 12], [40, 30]])
    drag(tool, ctx, [(10, 12), (20, 16), (30, 20)])
    assert ctx.active_point == 0  # grabbing a point selects it
    np.testing.assert_allclose(session.project.labels(0).keypoints[spec.id][0, :2], [30, 20])
    tool.press(ctx, ev(30, 20, shift=True))
    assert session.project.labels(0).keypoints[spec.id][0, 2] == 0
    tool.press(ctx, ev(40, 30, "right"))
    assert np.isnan(session.project.labels(0).keypoints[spec.id][1, 0])
    # a drag shows the moving point in the overlay until release
    tool.press(ctx, ev(30, 20))
    tool.move(ctx, ev(33, 22, "none"))
    assert tool.overlay(ctx).moved_point == (spec.id, 0, 33, 22)
    tool.cancel(ctx)
    assert tool.overlay(ctx).moved_point is None
    assert next_unplaced(None, 3, 2) == 0


def test_keypoint_tool_without_keypoint_object_explains(ctx: PlainContext) -> None:
    tool = tool_spec("keypoints").factory()
    tool.press(ctx, ev(5, 5))
    assert "keypoint object" in ctx.messages[-1]


def test_smart_select_box_then_clicks_each_one_undo_step(ctx: PlainContext) -> None:
    _image, disk = disk_image()
    tool = tool_spec("smart").factory()
    assert isinstance(tool, SmartSelectTool)
    drag(tool, ctx, [(22, 12), (40, 30), (58, 48)])
    session = ctx.session
    spec = ctx.active_object
    assert spec is not None and spec.name == "object 1"  # auto-created for the selection
    mask = session.project.labels(0).mask == spec.id
    assert iou(mask, disk) > 0.85
    assert session.undo_label == "Smart select"
    assert tool.overlay(ctx).box == (22, 12, 58, 48)
    # a right click on a wrong part removes it; a left click adds; one undo step each
    tool.press(ctx, ev(40, 30, "right"))
    tool.release(ctx, ev(40, 30, "right"))
    after_neg = session.project.labels(0).mask == spec.id
    assert not after_neg[30, 40]
    tool.press(ctx, ev(40, 30))
    tool.release(ctx, ev(40, 30))
    assert (session.project.labels(0).mask == spec.id)[30, 40]
    assert tool.overlay(ctx).clicks == ((40.0, 30.0, False), (40.0, 30.0, True))
    assert tool.runs == 3
    session.undo()
    np.testing.assert_array_equal(session.project.labels(0).mask == spec.id, after_neg)
    # outside the box nothing changed; a click outside it is refused
    tool.press(ctx, ev(2, 2))
    tool.release(ctx, ev(2, 2))
    assert "inside the selection box" in ctx.messages[-1]


def test_smart_select_keeps_other_objects_outside_the_box(ctx: PlainContext) -> None:
    session = ctx.session
    other = session.add_object("other")
    target = session.add_object("target")
    mask = np.zeros((64, 80), np.uint8)
    mask[44:54, 8:18] = other.id
    session.set_mask(0, mask)
    ctx.set_active_object(target.id)
    tool = SmartSelectTool()
    assert tool.select_box(ctx, (58, 48, 22, 12))  # corners in any order
    result = session.project.labels(0).mask
    assert (result[44:54, 8:18] == other.id).all()
    assert (result == target.id).sum() > 300


def test_smart_click_without_box_refines_the_existing_mask(ctx: PlainContext) -> None:
    _image, disk = disk_image()
    session = ctx.session
    spec = session.add_object("blob")
    ctx.set_active_object(spec.id)
    rough = disk.copy()
    rough[16:30, :] = False  # the top half is missing
    session.set_mask(0, np.where(rough, spec.id, 0).astype(np.uint8))
    tool = SmartSelectTool()
    assert tool.click(ctx, 40, 22, positive=True)
    refined = session.project.labels(0).mask == spec.id
    assert iou(refined, disk) > iou(rough, disk) + 0.1
    reach = rough.copy()
    reach[22, 40] = True  # the box covers the mask and the click
    assert tool.selection is not None and tool.selection.box == mask_box(reach, 0.15)


def test_smart_select_queues_clicks_while_busy_and_reports_failures(ctx: PlainContext) -> None:
    pending = []

    class LaterContext(PlainContext):
        def submit(self, work, done, failed):  # runs when the test says so
            pending.append((work, done, failed))

    later = LaterContext(ctx.session, images=ctx.images)
    tool = SmartSelectTool()
    tool.select_box(later, (22, 12, 58, 48))
    assert tool.busy and tool.overlay(later).busy
    tool.click(later, 40, 30, positive=False)
    tool.click(later, 41, 30, positive=False)
    assert len(pending) == 1  # queued, not a second worker
    work, done, _ = pending.pop()
    done(work())
    assert len(pending) == 1  # the queued clicks go out together
    work, done, _ = pending.pop()
    assert len(tool.selection.clicks) == 2
    done(work())
    assert not tool.busy and tool.runs == 2
    # a result that arrives after the selection ended is dropped
    tool.click(later, 40, 30, positive=True)
    work, done, failed = pending.pop()
    tool.cancel(later)
    steps = later.session.undo_label
    done(work())
    assert later.session.undo_label == steps and tool.runs == 2
    tool.select_box(later, (22, 12, 58, 48))
    _, _, failed = pending.pop()
    failed("ValueError: boom")
    assert "Smart select failed: ValueError: boom" in later.messages[-1] and not tool.busy


def test_smart_select_refuses_tiny_boxes(ctx: PlainContext) -> None:
    tool = SmartSelectTool()
    assert not tool.select_box(ctx, (10, 10, 11, 11))
    assert "larger box" in ctx.messages[-1]
    assert not tool.click(ctx, 10, 10, positive=True)
    assert "Drag a box" in ctx.messages[-1]
