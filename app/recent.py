"""Recent files: a most-recent-first list kept in QSettings, shown as a menu."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QSettings, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu, QWidget

KEY = "recent_files"


class RecentFiles(QObject):
    """``chosen`` is emitted with the path the user picks from ``menu``."""

    chosen = Signal(Path)

    def __init__(self, settings: QSettings, parent: QWidget, limit: int = 10) -> None:
        super().__init__(parent)
        self._settings = settings
        self._limit = limit
        self.menu = QMenu("Open &recent", parent)
        self._rebuild()

    def paths(self) -> list[Path]:
        value = self._settings.value(KEY, [])
        items = [value] if isinstance(value, str) else list(value or [])
        return [Path(p) for p in items if p]

    def add(self, path: Path) -> None:
        path = Path(path).absolute()
        items = [str(path), *(str(p) for p in self.paths() if p != path)][: self._limit]
        self._settings.setValue(KEY, items)
        self._settings.sync()
        self._rebuild()

    def _rebuild(self) -> None:
        self.menu.clear()
        paths = self.paths()
        for path in paths:
            action = QAction(str(path), self.menu)
            action.triggered.connect(lambda _checked=False, p=path: self.chosen.emit(p))
            self.menu.addAction(action)
        self.menu.setEnabled(bool(paths))
