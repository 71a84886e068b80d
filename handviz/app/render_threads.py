"""Software OpenGL yields the CPU to the tracking threads.

Without a GPU, Mesa's llvmpipe rasterises the 3D view on its own threads ("llvmpipe-0", ...),
which compete with MediaPipe and the cascade for the same cores. A frame reaches the screen only
after both its detection and its render, and the detection chain is the longer one, so the
rasteriser's threads get a lower priority (a higher nice value: allowed without privileges).
Measured with `xvfb-run -a handviz bench --app` on 2 cores: capture->display 53-54 -> 50 ms
median, at the same displayed rate. With a GPU there are no such threads and nothing changes.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

#: Name prefix of Mesa's software rasteriser threads.
SOFTWARE_GL_THREAD_PREFIX = "llvmpipe"
#: How much nicer than the rest of the process they become.
SOFTWARE_GL_NICE_STEP = 5


def lower_software_gl_priority(step: int = SOFTWARE_GL_NICE_STEP, task_dir: Path = Path("/proc/self/task"),
                               prefix: str = SOFTWARE_GL_THREAD_PREFIX) -> int:
    """Give this process's software-GL threads the calling thread's nice value plus step; returns
    how many there were (0 where there are none, or no /proc: not Linux). Call after the first
    render (the threads start with the GL context); calling again changes nothing more."""
    if not task_dir.is_dir():
        return 0
    target = min(19, os.getpriority(os.PRIO_PROCESS, 0) + step)  # 0: the calling thread
    found = 0
    for task in task_dir.iterdir():
        try:
            if not (task / "comm").read_text().startswith(prefix):
                continue
            tid = int(task.name)
            if os.getpriority(os.PRIO_PROCESS, tid) < target:
                os.setpriority(os.PRIO_PROCESS, tid, target)
            found += 1
        except (OSError, ValueError):  # the thread ended meanwhile, or the system refuses: keep going
            continue
    if found:
        log.info("software OpenGL: %d rasteriser thread(s) at nice %d", found, target)
    return found
