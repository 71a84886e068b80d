"""The software rasteriser's threads yield to the tracking threads (app/render_threads.py)."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import pytest

from handviz.app.render_threads import lower_software_gl_priority

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="thread names and nice values via /proc")


def test_only_threads_with_the_rasteriser_name_become_nicer_and_only_once():
    ready, done = threading.Event(), threading.Event()
    tids: dict[str, int] = {}

    def worker(name: str) -> None:
        tid = threading.get_native_id()
        Path(f"/proc/self/task/{tid}/comm").write_text(name)
        tids[name] = tid
        if len(tids) == 2:
            ready.set()
        done.wait(60)  # released by the test at once; the limit only ends a failed test

    threads = [threading.Thread(target=worker, args=(name,)) for name in ("hvtest-gl-0", "handviz-detect")]
    for t in threads:
        t.start()
    try:
        assert ready.wait(60)
        mine = os.getpriority(os.PRIO_PROCESS, 0)
        before = {name: os.getpriority(os.PRIO_PROCESS, tid) for name, tid in tids.items()}
        assert lower_software_gl_priority(step=3, prefix="hvtest-gl") == 1
        assert lower_software_gl_priority(step=3, prefix="hvtest-gl") == 1  # again: no further change
        after = {name: os.getpriority(os.PRIO_PROCESS, tid) for name, tid in tids.items()}
    finally:
        done.set()
        for t in threads:
            t.join()
    assert after["hvtest-gl-0"] == min(19, mine + 3)
    assert after["handviz-detect"] == before["handviz-detect"]


def test_no_proc_means_nothing_to_do(tmp_path):
    assert lower_software_gl_priority(task_dir=tmp_path / "absent") == 0
