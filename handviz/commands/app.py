"""`handviz [--source 0|FILE|DIR|demo]`: the desktop app.

The one place where the app meets the model: it builds the cascade factory (handviz.cascade,
torch) and hands it to the window, which never imports torch itself.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import Callable

from handviz.pipeline.inference import InferenceBackend


def cascade_backend_factory(weights: str | None, device: str | None = None) -> Callable[[], InferenceBackend]:
    """A zero-argument callable that loads the cascade (called once, on the inference thread)."""

    def load() -> InferenceBackend:
        from handviz.cascade import Cascade
        from handviz.pipeline.inference import cascade_backend

        return cascade_backend(Cascade.from_weights(weights, device=device))

    return load


def launch(source: str | None = None, session: str | Path | None = None, weights: str | None = None,
           debug: bool = False) -> int:
    """Create the QApplication and the window; returns the Qt exit code."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from handviz.app.main_window import MainWindow
    from handviz.app.settings import APPLICATION, ORGANIZATION
    from handviz.logs import setup_logging

    setup_logging(debug)
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
    return launch(source=args.source, weights=args.weights, debug=args.debug)
