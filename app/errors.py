"""Errors become dialogs: a wrapper for slots and a ``sys.excepthook`` so the app never dies.

A :class:`~tracker_core.errors.TrackpaintError` (and the ValueError/KeyError/RuntimeError the
session raises for a refused command) is shown with its one-line message; anything else is shown
with its type, and the traceback goes to stderr.
"""

from __future__ import annotations

import functools
import sys
import traceback
from collections.abc import Callable
from types import TracebackType
from typing import ParamSpec, TypeVar

from PySide6.QtWidgets import QMessageBox, QWidget

from tracker_core.errors import TrackpaintError

P = ParamSpec("P")
R = TypeVar("R")
EXPECTED = (TrackpaintError, ValueError, KeyError, IndexError, RuntimeError, OSError)


def error_message(exc: BaseException) -> str:
    """The text a user sees for ``exc``."""
    if isinstance(exc, TrackpaintError):
        return str(exc)
    if isinstance(exc, KeyError) and exc.args:
        return str(exc.args[0])
    if isinstance(exc, EXPECTED):
        return str(exc) or type(exc).__name__
    return f"Unexpected error ({type(exc).__name__}): {exc}"


def show_error(parent: QWidget | None, message: str, title: str = "Trackpaint") -> None:
    """A modal error box with ``message``."""
    QMessageBox.critical(parent, title, message)


def report(parent: QWidget | None, exc: BaseException, title: str = "Trackpaint") -> None:
    if not isinstance(exc, EXPECTED):
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    show_error(parent, error_message(exc), title)


def guarded(parent: Callable[[], QWidget | None], fn: Callable[P, R]) -> Callable[P, R | None]:
    """``fn`` with every exception shown as a dialog (over ``parent()``) instead of raised."""

    @functools.wraps(fn)
    def call(*args: P.args, **kwargs: P.kwargs) -> R | None:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            report(parent(), exc)
            return None

    return call


def install_excepthook(parent: Callable[[], QWidget | None]) -> Callable[..., None]:
    """Route uncaught exceptions (e.g. in a Qt virtual method) to a dialog; returns the old
    hook. Keyboard interrupts keep their default behaviour."""
    previous = sys.excepthook

    def hook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if issubclass(kind, KeyboardInterrupt):
            previous(kind, exc, tb)
            return
        try:
            report(parent(), exc.with_traceback(tb))
        except Exception:  # never let the hook itself raise
            previous(kind, exc, tb)

    sys.excepthook = hook
    return previous
