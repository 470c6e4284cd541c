"""Fail if tracker_core imports Qt, statically (AST) and at run time (sys.modules)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

FORBIDDEN = ("PySide6", "PyQt5", "PyQt6", "PySide2", "pyqtgraph", "shiboken6", "app")


def static_violations(root: Path) -> list[str]:
    bad: list[str] = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                if name.split(".")[0] in FORBIDDEN:
                    bad.append(f"{path}:{node.lineno}: imports {name}")
    return bad


def runtime_violations(root: Path) -> list[str]:
    code = (
        "import importlib, pkgutil, sys\n"
        "import tracker_core\n"
        "for m in pkgutil.walk_packages(tracker_core.__path__, 'tracker_core.'):\n"
        "    importlib.import_module(m.name)\n"
        f"bad = [m for m in sys.modules if m.split('.')[0] in {FORBIDDEN[:-1]!r}]\n"
        "print('\\n'.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root.parent, capture_output=True, text=True, check=True
    )
    return [f"runtime: tracker_core pulled in {m}" for m in out.stdout.split()]


def main() -> int:
    root = Path(__file__).resolve().parent.parent / "tracker_core"
    bad = static_violations(root) + runtime_violations(root)
    for line in bad:
        print(line, file=sys.stderr)
    if bad:
        return 1
    print("tracker_core imports no Qt: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
