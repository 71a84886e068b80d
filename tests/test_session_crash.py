"""A recording killed with SIGKILL keeps (almost) every frame it had reported as recorded."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from handviz.io.session import SessionReader

REPORTED_BEFORE_KILL = 60

# Records ~150 frames/s (one hand of 1609 vertices, 32 hypotheses, a 160x120 picture that encodes
# the frame number) and prints how many frames the writer reports as recorded (committed) so far.
# Frames still queued for the writer thread are not "recorded" yet, so a loaded machine (the writer
# lagging behind put()) does not make the test flaky.
RECORDER = r"""
import sys, time
import numpy as np
from handviz.io.session import SessionWriter
from handviz.types import Frame, FrameResult, HandEstimate

rng = np.random.default_rng(0)
faces = rng.integers(0, 1609, (3000, 3))
writer = SessionWriter(sys.argv[1], faces, np.eye(3))
accepted = 0
for i in range(100000):
    image = np.full((120, 160, 3), 10, np.uint8)
    image[:, i % 150:i % 150 + 10] = 250
    f = lambda *s: np.full(s, float(i), np.float32)
    hand = HandEstimate("Right", 0.9, f(21, 2), f(21, 3), f(32, 21, 3), f(21), f(1609, 3), f(21, 3))
    result = FrameResult(Frame(i, image, stamps={"captured": time.perf_counter()}), [], [hand], np.eye(3))
    if writer.put(result):
        accepted += 1
        print(writer.frames_written, flush=True)
    time.sleep(0.005)
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_sigkill_keeps_reported_frames(tmp_path: Path) -> None:
    session = tmp_path / "s"
    proc = subprocess.Popen([sys.executable, "-c", RECORDER, str(session)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    reported = 0
    deadline = time.monotonic() + 60
    try:
        for line in proc.stdout:
            reported = int(line)
            if reported >= REPORTED_BEFORE_KILL or time.monotonic() > deadline:
                break
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        rest, err = proc.communicate(timeout=30)
    reported = max([reported, *(int(x) for x in rest.split())])
    assert reported >= REPORTED_BEFORE_KILL, f"the recorder did not get going: {err[-2000:]}"

    with SessionReader(session) as reader:
        assert not reader.complete
        assert len(reader) >= 0.95 * reported, f"{len(reader)} of {reported} reported frames survived"
        with_image = []
        for k in (len(reader) - 1, 0, len(reader) // 2, 3):  # random access into an unindexed AVI
            record = reader.frame(k)
            i = record.source_index  # == k unless the recorder had to drop a frame
            np.testing.assert_array_equal(record.hands[0].vertices, np.full((1609, 3), i, np.float32))
            if record.image is not None:
                with_image.append(k)
                bar = np.flatnonzero(record.image[60, :, 0] > 128)
                assert bar.min() == pytest.approx(i % 150, abs=1), f"frame {k} shows another picture"
        # OpenCV's AVI writer keeps the last few kB in its buffer, lost on a kill: those frames
        # come back without a picture, the earlier ones with theirs.
        assert 0 in with_image and 3 in with_image
