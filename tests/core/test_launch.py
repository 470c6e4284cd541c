"""Process start-up: the OpenMP wait policy is set before torch loads, never over the user's."""

from __future__ import annotations

import subprocess
import sys

from tracker_core.launch import PROCESS_ENV, prepare_process


def test_prepare_process_sets_only_what_the_user_left_unset() -> None:
    env: dict[str, str] = {}
    assert prepare_process(env) == PROCESS_ENV and env["OMP_WAIT_POLICY"] == "PASSIVE"
    mine = {"OMP_WAIT_POLICY": "ACTIVE"}
    assert prepare_process(mine) == {} and mine == {"OMP_WAIT_POLICY": "ACTIVE"}


def test_the_launcher_imports_no_torch_and_the_command_gets_the_policy() -> None:
    code = (
        "import sys, os; import tracker_core.launch as l; assert 'torch' not in sys.modules; "
        "os.environ.pop('OMP_WAIT_POLICY', None); l.prepare_process(); "
        "import torch; print(os.environ['OMP_WAIT_POLICY'])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "PASSIVE"


def test_cli_runs_the_command_line(monkeypatch, capsys) -> None:
    import pytest

    from tracker_core import launch

    monkeypatch.setattr(sys, "argv", ["trackpaint", "--help"])
    with pytest.raises(SystemExit) as exit_info:
        launch.cli()
    assert exit_info.value.code == 0 and "propagate" in capsys.readouterr().out
