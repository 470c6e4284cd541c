"""Importing tracker_core sets libgomp's spin count before torch loads, unless the user did."""

from __future__ import annotations

import os
import subprocess
import sys

CODE = "import os, tracker_core, torch; print(os.environ.get('GOMP_SPINCOUNT'))"


def run(env_value: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "GOMP_SPINCOUNT"}
    if env_value is not None:
        env["GOMP_SPINCOUNT"] = env_value
    out = subprocess.run(
        [sys.executable, "-c", CODE], env=env, capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def test_spin_count_is_capped_by_default() -> None:
    import tracker_core

    assert run(None) == tracker_core.SPIN_COUNT == "20000"


def test_a_users_spin_count_is_kept() -> None:
    assert run("300000") == "300000"
