"""Before Qt starts: are the shared libraries of Qt's X11 (xcb) platform plugin installed?

Qt's own message when one is missing blames the wrong library ("xcb-cursor0 is needed", with
libxcb-cursor0 installed, when libxcb-icccm4 and libxcb-keysyms1 were missing). This module runs
``ldd`` on PySide6's ``libqxcb.so``, lists every "not found" library, and names the Debian /
Ubuntu package for each plus the install command. It imports no Qt (it runs before Qt loads).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

# soname -> Debian/Ubuntu package (Qt 6's xcb plugin and what it loads)
DEBIAN_PACKAGES: Mapping[str, str] = {
    "libxcb.so.1": "libxcb1",
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xinerama.so.0": "libxcb-xinerama0",
    "libxcb-xinput.so.0": "libxcb-xinput0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxcb-glx.so.0": "libxcb-glx0",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libX11.so.6": "libx11-6",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libXrender.so.1": "libxrender1",
    "libSM.so.6": "libsm6",
    "libICE.so.6": "libice6",
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libOpenGL.so.0": "libopengl0",
    "libGLX.so.0": "libglx0",
    "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6",
    "libdbus-1.so.3": "libdbus-1-3",
    "libglib-2.0.so.0": "libglib2.0-0",
}
_NOT_FOUND = re.compile(r"^\s*(\S+)\s+=>\s+not found\s*$")
# Platforms that do not load the xcb plugin (QT_QPA_PLATFORM may list fallbacks: "wayland;xcb").
_OTHER_PLATFORMS = ("offscreen", "minimal", "vnc", "wayland", "eglfs", "linuxfb", "vkkhrdisplay")


def missing_libraries(ldd_output: str) -> list[str]:
    """Sonames that ``ldd`` reported as "not found", in order, without repeats."""
    seen: list[str] = []
    for line in ldd_output.splitlines():
        match = _NOT_FOUND.match(line)
        if match and match.group(1) not in seen:
            seen.append(match.group(1))
    return seen


def debian_packages(libraries: list[str]) -> tuple[list[str], list[str]]:
    """``(packages, unknown)``: the Debian packages providing ``libraries`` (sorted, no
    repeats) and the sonames this table does not know."""
    packages = sorted({DEBIAN_PACKAGES[lib] for lib in libraries if lib in DEBIAN_PACKAGES})
    unknown = [lib for lib in libraries if lib not in DEBIAN_PACKAGES]
    return packages, unknown


def install_message(plugin: Path, libraries: list[str]) -> str:
    """The message for missing ``libraries``: a one-line error naming the plugin and the
    libraries, then the packages and the command that installs them."""
    packages, unknown = debian_packages(libraries)
    lines = [f"trackpaint: error: {plugin}: missing system libraries: {', '.join(libraries)}"]
    if packages:
        lines.append(
            f"On Debian/Ubuntu install them with:\n  sudo apt-get install -y {' '.join(packages)}"
        )
    if unknown:
        lines.append(f"Find the package providing {', '.join(unknown)} with: apt-file search NAME")
    lines.append("(Fedora: see the README's system packages; headless: QT_QPA_PLATFORM=offscreen)")
    return "\n".join(lines)


def xcb_plugin() -> Path | None:
    """PySide6's X11 platform plugin, located without importing Qt; None when absent."""
    spec = importlib.util.find_spec("PySide6")
    if spec is None or not spec.submodule_search_locations:
        return None
    plugin = Path(next(iter(spec.submodule_search_locations))) / "Qt/plugins/platforms/libqxcb.so"
    return plugin if plugin.is_file() else None


def needs_xcb(environ: Mapping[str, str], platform: str | None = None) -> bool:
    """Whether Qt will load the xcb plugin: Linux (``platform`` defaults to ``sys.platform``),
    and QT_QPA_PLATFORM unset or xcb first."""
    if not (platform or sys.platform).startswith("linux"):
        return False
    wanted = environ.get("QT_QPA_PLATFORM", "").split(";")[0].split(":")[0].strip().lower()
    if wanted in _OTHER_PLATFORMS:
        return False
    if not wanted and environ.get("WAYLAND_DISPLAY") and not environ.get("DISPLAY"):
        return False  # a Wayland session picks the wayland plugin
    return True


def check_platform_libraries(environ: Mapping[str, str] | None = None) -> str | None:
    """None when Qt's xcb plugin can load (or is not needed, or cannot be checked); else the
    message from :func:`install_message`."""
    env = os.environ if environ is None else environ
    if not needs_xcb(env):
        return None
    plugin = xcb_plugin()
    ldd = shutil.which("ldd")
    if plugin is None or ldd is None:
        return None
    try:
        out = subprocess.run([ldd, str(plugin)], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    missing = missing_libraries(out.stdout)
    return install_message(plugin, missing) if missing else None
