"""The launcher's check of Qt's xcb plugin libraries (fake ldd output; no display needed)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from app import platform_check
from app.platform_check import (
    check_platform_libraries,
    debian_packages,
    install_message,
    missing_libraries,
    needs_xcb,
)

LDD = """\
\tlinux-vdso.so.1 (0x00007ffd5d9f6000)
\tlibQt6XcbQpa.so.6 => /venv/PySide6/Qt/lib/libQt6XcbQpa.so.6 (0x00007f5e0a000000)
\tlibxcb-cursor.so.0 => /lib/x86_64-linux-gnu/libxcb-cursor.so.0 (0x00007f5e09e00000)
\tlibxcb-icccm.so.4 => not found
\tlibxcb-keysyms.so.1 => not found
\tlibxcb-icccm.so.4 => not found
\tlibfoo-unknown.so.7 => not found
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f5e09a00000)
"""


def test_missing_libraries_are_parsed_once_each_in_order() -> None:
    assert missing_libraries(LDD) == [
        "libxcb-icccm.so.4",
        "libxcb-keysyms.so.1",
        "libfoo-unknown.so.7",
    ]
    assert missing_libraries("\tlibc.so.6 => /lib/libc.so.6 (0x1)\n") == []


def test_sonames_map_to_debian_packages() -> None:
    packages, unknown = debian_packages(
        ["libxcb-keysyms.so.1", "libxcb-icccm.so.4", "libxcb-cursor.so.0", "libbar.so.1"]
    )
    assert packages == ["libxcb-cursor0", "libxcb-icccm4", "libxcb-keysyms1"]
    assert unknown == ["libbar.so.1"]


def test_message_names_the_plugin_libraries_packages_and_command() -> None:
    text = install_message(Path("/x/libqxcb.so"), missing_libraries(LDD))
    first = text.splitlines()[0]
    assert first.startswith("trackpaint: error: /x/libqxcb.so: missing system libraries: ")
    assert "libxcb-icccm.so.4, libxcb-keysyms.so.1" in first
    assert "sudo apt-get install -y libxcb-icccm4 libxcb-keysyms1" in text
    assert "libfoo-unknown.so.7" in text.splitlines()[-2]


@pytest.mark.parametrize(
    ("env", "platform", "expected"),
    [
        ({}, "linux", True),
        ({"QT_QPA_PLATFORM": "xcb"}, "linux", True),
        ({"QT_QPA_PLATFORM": "offscreen"}, "linux", False),
        ({"QT_QPA_PLATFORM": "wayland;xcb"}, "linux", False),
        ({"WAYLAND_DISPLAY": "wayland-0"}, "linux", False),
        ({"WAYLAND_DISPLAY": "wayland-0", "DISPLAY": ":0"}, "linux", True),
        ({}, "darwin", False),
    ],
)
def test_only_checked_when_qt_will_load_xcb(env, platform, expected) -> None:
    assert needs_xcb(env, platform) is expected


def test_check_runs_ldd_on_the_plugin(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    plugin = tmp_path / "libqxcb.so"
    plugin.write_bytes(b"")
    calls = []

    def fake_run(cmd, **kwargs):
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 0, stdout=LDD, stderr="")

    monkeypatch.setattr(platform_check, "xcb_plugin", lambda: plugin)
    monkeypatch.setattr(platform_check.shutil, "which", lambda _name: "/usr/bin/ldd")
    monkeypatch.setattr(platform_check.subprocess, "run", fake_run)
    monkeypatch.setattr(platform_check.sys, "platform", "linux")
    message = check_platform_libraries({"DISPLAY": ":0"})
    assert calls == [["/usr/bin/ldd", str(plugin)]]
    assert message is not None and "libxcb-keysyms1" in message
    assert check_platform_libraries({"QT_QPA_PLATFORM": "offscreen"}) is None
    assert len(calls) == 1  # offscreen: ldd is not even run


def test_main_exits_2_with_the_message(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    import app.__main__ as launcher

    monkeypatch.setattr(launcher, "check_platform_libraries", lambda: "trackpaint: error: x: y")
    assert launcher.main([]) == 2
    assert capsys.readouterr().err.strip() == "trackpaint: error: x: y"
