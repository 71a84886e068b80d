"""Garbage collection while a window is open (app/gui_gc.py): on the GUI thread only, and with
what lives as long as the app (modules, models, the window) frozen out of full collections."""

from __future__ import annotations

import gc
import weakref

import pytest

pytest.importorskip("pyqtgraph")


class _Node:
    other: _Node | None = None


def test_frozen_objects_leave_later_collections_which_still_free_new_cycles(qtbot):
    from handviz.app import gui_gc

    enabled = gc.isenabled()
    gui_gc.collect_on_gui_thread()
    try:
        assert not gc.isenabled()  # collections run from the GUI thread's timer
        long_lived = _Node()
        frozen = gui_gc.freeze_long_lived()
        assert frozen > 1000 and gc.get_freeze_count() == frozen
        assert not any(obj is long_lived for obj in gc.get_objects())  # out of the collector's sight
        a, b = _Node(), _Node()
        a.other, b.other = b, a  # a cycle made after the freeze
        gone = weakref.ref(a)
        del a, b
        gc.collect()
        assert gone() is None
    finally:
        gui_gc.release()
    assert gc.get_freeze_count() == 0  # the last window closed: everything is collectable again
    assert gc.isenabled() == enabled
    assert any(obj is long_lived for obj in gc.get_objects())
