"""`handviz [--source 0|FILE|DIR|demo]`: the desktop app.

The one place where the app meets the model: it builds the cascade factory (handviz.cascade,
torch) and hands it to the window, which never imports torch itself.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from typing import Callable

from handviz.logs import InputError
from handviz.pipeline.inference import InferenceBackend

#: One line for a machine with no display: what to do, and what to install for it.
NO_DISPLAY_MESSAGE = ("no display to open the window on (DISPLAY and WAYLAND_DISPLAY are unset or "
                      "unreachable): start handviz from a desktop session, or run it under a virtual "
                      "display with `xvfb-run -a handviz` (install: apt install xvfb); `handviz record` "
                      "and `handviz predict` need no display")


def display_problem(environ: dict[str, str] | None = None) -> str | None:
    """Why Qt would abort on start for want of a display (None: a display is there).

    Linux only (macOS and Windows always have one); QT_QPA_PLATFORM set by the user is trusted.
    A local X display (":N") counts when its socket exists, so a stale DISPLAY is caught too.
    """
    env = os.environ if environ is None else environ
    if not sys.platform.startswith("linux") or env.get("QT_QPA_PLATFORM"):
        return None
    if env.get("WAYLAND_DISPLAY"):
        return None
    display = env.get("DISPLAY", "")
    if not display:
        return NO_DISPLAY_MESSAGE
    if display.startswith(":"):
        number = display[1:].split(".")[0]
        if number.isdigit() and not Path(f"/tmp/.X11-unix/X{number}").exists():
            return NO_DISPLAY_MESSAGE.replace("unset or unreachable", f"unreachable ({display})")
    return None


def forget_cv2_qt_plugins() -> None:
    """opencv-python points QT_QPA_PLATFORM_PLUGIN_PATH at its own Qt plugins on import; PySide6
    must load its own, or a start-up failure blames cv2's xcb plugin instead of the real cause."""
    for name in ("QT_QPA_PLATFORM_PLUGIN_PATH", "QT_QPA_FONTDIR"):
        value = os.environ.get(name, "")
        if f"{os.sep}cv2{os.sep}" in value:
            del os.environ[name]


def cascade_backend_factory(weights: str | None, device: str | None = None) -> Callable[[], InferenceBackend]:
    """A zero-argument callable that loads the cascade (called once, on the inference thread)."""

    def load() -> InferenceBackend:
        from handviz.cascade import Cascade
        from handviz.io.session_meta import weights_fingerprint
        from handviz.paths import weights_dir
        from handviz.pipeline.inference import cascade_backend

        cascade = Cascade.from_weights(weights, device=device)
        return cascade_backend(cascade, fingerprint=weights_fingerprint(weights_dir(weights)))

    return load


def launch(source: str | None = None, session: str | Path | None = None, weights: str | None = None) -> int:
    """Create the QApplication and the window; returns the Qt exit code. Raises InputError
    (exit status 2, logged) when there is no display, before Qt could abort the process.
    Logging is the CLI's: cli.main has set it up for this command (doing it again here wrote the
    start-up line twice)."""
    problem = display_problem()
    if problem is not None:
        raise InputError(problem)
    import cv2  # noqa: F401  (imported first on purpose: its environment changes are undone below)

    forget_cv2_qt_plugins()
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from handviz.app.main_window import MainWindow
    from handviz.app.settings import APPLICATION, ORGANIZATION

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setDesktopFileName("handviz")
    window = MainWindow(source=source, session=session, backend_factory=cascade_backend_factory(weights))
    window.show()
    # Ctrl+C in the terminal closes the window cleanly (Qt's loop would otherwise swallow it).
    signal.signal(signal.SIGINT, lambda *_: window.close())
    wake = QTimer()
    wake.timeout.connect(lambda: None)  # lets Python run its signal handlers
    wake.start(200)
    return int(app.exec())


def run(args: argparse.Namespace) -> int:
    return launch(source=args.source, weights=args.weights)
