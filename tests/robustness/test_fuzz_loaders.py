"""Fast fuzzing of the loaders (few examples each; ``benchmarks/fuzz_loaders.py`` runs long),
plus the concrete inputs earlier fuzzing found, as regression tests.

Acceptable outcomes: success or the loader's TrackpaintError subclass (see ``fuzz_targets``).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from tests.robustness.fuzz_targets import (
    TARGETS,
    in_fresh_dir,
    project_edits,
    seed_coco,
    seed_project,
    target_project_edits,
)
from tracker_core.errors import ExportError, ProjectError
from tracker_core.export import import_coco
from tracker_core.project import Project

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

_FAST = settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def _fuzz(name: str) -> None:
    target, strategy = TARGETS[name]
    values = project_edits(huge_sizes=False) if name == "project edits" else strategy()

    @_FAST
    @given(values)
    def run(value: Any) -> None:
        in_fresh_dir(target, value)

    run()


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_loader_fuzz_fast(name: str) -> None:
    _fuzz(name)


# Hand-edited project rows found by fuzzing: each used to escape as ValueError, OverflowError,
# TypeError, sqlite3.OperationalError or cv2.error instead of a ProjectError naming the file.
FOUND = {
    "confidence text": ("UPDATE frames SET confidence='abc' WHERE idx=1", "open"),
    "source text": ("UPDATE frames SET source='x' WHERE idx=1", "open"),
    "source overflow": ("UPDATE frames SET source=1099511627776 WHERE idx=1", "open"),
    "source out of range": ("UPDATE frames SET source=999 WHERE idx=1", "open"),
    "mask empty blob": ("UPDATE frames SET mask=x'' WHERE idx=1", "labels"),
    "mask is a number": ("UPDATE frames SET mask=3.5 WHERE idx=1", "labels"),
    "mask is text": ("UPDATE frames SET mask='text' WHERE idx=1", "labels"),
    "keypoint rows not a list": (
        """UPDATE frames SET keypoints='{"2": 3}' WHERE idx=1""",
        "labels",
    ),
    "keypoints not UTF-8": (
        "UPDATE frames SET keypoints=CAST(x'7bd5ff7d' AS TEXT) WHERE idx=1",
        "labels",
    ),
    "keypoint row not a list": (
        """UPDATE frames SET keypoints='{"2": [1, 2, 3]}' WHERE idx=1""",
        "labels",
    ),
}


@pytest.mark.parametrize("case", sorted(FOUND))
def test_hand_edited_rows_found_by_fuzzing(tmp_path: Path, case: str) -> None:
    sql, where = FOUND[case]
    path = tmp_path / "edited.trackpaint"
    path.write_bytes(seed_project())
    with sqlite3.connect(path) as db:
        db.execute(sql)
    db.close()
    with pytest.raises(ProjectError) as info:
        with Project.open(path) as project:
            assert where == "labels", "the broken row must be refused when opening"
            project.labels(1)
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    assert ("frame 1" in message) or where == "open"


@pytest.mark.parametrize("page_size", [b"\x00\x00", b"\x00\x03", b"\x03\x00"])
def test_corrupt_sqlite_page_size_is_a_project_error(tmp_path: Path, page_size: bytes) -> None:
    """Found by fuzzing: a zero page size in the header raised ZeroDivisionError."""
    data = bytearray(seed_project())
    data[16:18] = page_size
    path = tmp_path / "header.trackpaint"
    path.write_bytes(bytes(data))
    with pytest.raises(ProjectError, match="corrupt SQLite header") as info:
        Project.open(path)
    assert str(path) in str(info.value)


def test_implausible_frame_count_is_refused(tmp_path: Path) -> None:
    in_fresh_dir(
        target_project_edits,
        [("UPDATE meta SET value=? WHERE key=?", ("99999999999", "num_frames"))],
    )


@pytest.mark.parametrize("key", ["category_id", "image_id"])
@pytest.mark.parametrize("value", [float("inf"), float("-inf")])
def test_coco_infinite_ids_are_an_export_error(tmp_path: Path, key: str, value: float) -> None:
    """Found by fuzzing: ``"category_id": Infinity`` (valid for Python's json) overflowed
    ``int()`` and escaped as OverflowError."""
    document = json.loads(seed_coco())
    document["annotations"][0][key] = value
    path = tmp_path / "infinite.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(ExportError, match="malformed COCO file") as info:
        import_coco(path)
    assert str(path) in str(info.value)
