"""Python's cyclic garbage collection on the GUI thread only, while a window is open.

The collector runs on whichever thread crosses its allocation threshold. When that is a worker
thread (capture, detect, infer) and the garbage holds Qt wrappers (a closed dialog, an old
window's menus), Qt objects are destroyed off the GUI thread. Seen here as a hang: the infer
thread inside ~QObject waiting for the GIL, the GUI thread holding the GIL and waiting for Qt's
mutex. pyqtgraph's GarbageCollector (the pattern pyqtgraph itself uses) turns automatic
collection off and collects from a GUI-thread timer instead.
"""

from __future__ import annotations

import gc

from pyqtgraph.util.garbage_collector import GarbageCollector

#: How often the GUI thread checks the collector's counts (seconds).
INTERVAL_S = 1.0

_open: list[GarbageCollector] = []
_was_enabled = True


def collect_on_gui_thread() -> None:
    """Call on the GUI thread when a window opens; pair with `release()` when it closes."""
    global _was_enabled
    if not _open:
        _was_enabled = gc.isenabled()
    _open.append(GarbageCollector(interval=INTERVAL_S))


def freeze_long_lived() -> int:
    """Collect once, then keep every object alive now out of later collections (gc.freeze); returns
    how many that is. Call on the GUI thread once a feed's model has loaded (each feed: the
    collection before the freeze also sees what the last freeze kept).

    The modules, the models and the window live as long as the app, yet every full collection
    walked all of them: 100-250 ms with the GIL held on the GUI thread, so every thread stopped
    (3-7 frames lost, every few tens of seconds). After this a full collection walks only what
    came later: 0.7-1.2 ms (`bench --app --window 1920x1080`).
    """
    gc.unfreeze()  # what an earlier feed froze may be garbage now (its model, its window state)
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def release() -> None:
    """The window closed: collect now (still on the GUI thread) and, once no window is left,
    give collection back to Python, frozen objects included."""
    if not _open:
        return
    _open.pop().timer.stop()
    if not _open:
        gc.unfreeze()
    gc.collect()
    if not _open and _was_enabled:
        gc.enable()
