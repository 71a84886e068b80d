"""A recording killed with SIGKILL keeps every frame it had reported as recorded.

The writer counts a frame in `frames_written` only after its transaction committed, so the promise
is 100 %: whenever the kill lands (while frames stream in, before the first commit, while close()
drains the queue or before it folds the WAL into the database), the session opens and holds at
least every frame reported before the kill, each with its own content.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from handviz.io.session import SessionReader

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")

REPORTED_BEFORE_KILL = 60
#: Frames queued before close() in the "during close" cases, and the one whose write close() is in.
QUEUED_BEFORE_CLOSE = 300
STOP_IN_CLOSE = 202

# Records frames (one hand of 1609 vertices, 32 hypotheses, a 160x120 picture that encodes the
# frame number; every array holds the frame number) and prints a line with the writer's count of
# recorded (committed) frames each time the writer updates it, and the words "writing" / "closing"
# / "finishing" / "closed" at the moments the test may kill it. Frames still queued for the writer
# thread are not "recorded" yet, so a loaded machine (the writer lagging behind put()) does not
# make the test flaky.
#   stream: a frame every 5 ms (a camera's pace), non-blocking put() as the live view does.
#   first: the writer thread stops inside its first frame's transaction ("writing"), uncommitted.
#   close: QUEUED_BEFORE_CLOSE frames queued before the writer may start, then close(); the writer
#     stops inside the transaction of frame STOP_IN_CLOSE ("writing"), the frames before it
#     committed up to the last few.
#   finish: as close, but the writer stops when close() has committed every frame and is about to
#     write the final meta and fold the WAL into the database ("finishing").
RECORDER = r"""
import os, sys, threading, time
import numpy as np
from handviz.io.session import SessionWriter
from handviz.types import Frame, FrameResult, HandEstimate

path, mode, n_close, stop_in_close = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
say = lambda word: os.write(1, f"{word}\n".encode())  # one write: lines from two threads never mix
never, may_write = threading.Event(), threading.Event()
stop_at = {"first": 0, "close": stop_in_close}.get(mode)

class Reporting(SessionWriter):
    @property
    def _frames_written(self):
        return self._count

    @_frames_written.setter
    def _frames_written(self, value):  # the writer counts a frame once its commit returned
        self._count = value
        say(value)

    def _write(self, item):
        may_write.wait()
        stop = self._next_frame == stop_at
        super()._write(item)
        if stop:  # its rows are in the open transaction, not committed
            say("writing")
            never.wait()

    if mode == "finish":
        def _finish(self, closed_cleanly, reason=None):
            say("finishing")
            never.wait()

def result(i):
    image = np.full((120, 160, 3), 10, np.uint8)
    image[:, i % 150:i % 150 + 10] = 250
    f = lambda *s: np.full(s, float(i), np.float32)
    hand = HandEstimate("Right", 0.9, f(21, 2), f(21, 3), f(32, 21, 3), f(21), f(1609, 3), f(21, 3))
    return FrameResult(Frame(i, image, stamps={"captured": time.perf_counter()}), [], [hand], np.eye(3))

faces = np.random.default_rng(0).integers(0, 1609, (3000, 3))
writer = Reporting(path, faces, np.eye(3), queue_size=max(32, n_close + 1))
if mode in ("stream", "first"):
    may_write.set()
    for i in range(100000):
        writer.put(result(i))
        time.sleep(0.005)
else:
    for i in range(n_close):
        assert writer.put(result(i), block=True)
    say("closing")
    may_write.set()
    writer.close()
    say("closed")
"""


def _record_and_kill(session: Path, mode: str, kill_when) -> tuple[int, list[str], str]:
    """Run the recorder, SIGKILL it at the first line for which kill_when(line, lines) is true;
    (frames reported before the kill, every line it printed, its stderr)."""
    proc = subprocess.Popen([sys.executable, "-c", RECORDER, str(session), mode, str(QUEUED_BEFORE_CLOSE),
                             str(STOP_IN_CLOSE)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    # a recorder stuck before the moment it waits for is killed too (its output ends); no speed limit
    stuck = threading.Timer(240, proc.kill)
    stuck.start()
    try:
        for line in proc.stdout:
            lines.append(line.strip())
            if kill_when(lines[-1], lines):
                break
    finally:
        stuck.cancel()
        os.kill(proc.pid, signal.SIGKILL)
        rest, err = proc.communicate(timeout=60)
    lines += rest.split()
    reported = max([0, *(int(x) for x in lines if x.isdigit())])
    return reported, lines, err


def _check_frames(reader: SessionReader, positions) -> None:
    """Each frame read back holds its own frame's numbers (and picture, where the video has it)."""
    for k in positions:
        record = reader.frame(k)
        i = record.source_index  # == k unless the recorder had to drop a frame
        np.testing.assert_array_equal(record.hands[0].vertices, np.full((1609, 3), i, np.float32))
        np.testing.assert_array_equal(record.hands[0].joint_hypotheses, np.full((32, 21, 3), i, np.float32))
        if record.image is not None:
            bar = np.flatnonzero(record.image[60, :, 0] > 128)
            assert bar.min() == pytest.approx(i % 150, abs=1), f"frame {k} shows another picture"


def test_sigkill_keeps_reported_frames(tmp_path: Path) -> None:
    session = tmp_path / "s"
    reported, lines, err = _record_and_kill(session, "stream",
                                            lambda line, _: line.isdigit() and int(line) >= REPORTED_BEFORE_KILL)
    assert reported >= REPORTED_BEFORE_KILL, f"the recorder did not get going: {err[-2000:]}"

    with SessionReader(session) as reader:
        assert not reader.complete
        assert len(reader) >= reported, f"{len(reader)} of {reported} reported frames survived"
        _check_frames(reader, range(len(reader)))
        # OpenCV's AVI writer keeps the last few kB in its buffer, lost on a kill: those frames
        # come back without a picture, the earlier ones with theirs.
        assert reader.frame(0).image is not None and reader.frame(3).image is not None


def test_sigkill_before_the_first_commit_leaves_a_readable_empty_session(tmp_path: Path) -> None:
    """Killed with its first frame written into the open transaction: the session opens, cut
    short, with no frame (nothing was reported) and no half-written one."""
    session = tmp_path / "s"
    reported, lines, err = _record_and_kill(session, "first", lambda line, _: line == "writing")
    assert "writing" in lines, f"the recorder did not get going: {err[-2000:]}"
    assert reported == 0
    with SessionReader(session) as reader:
        assert not reader.complete
        assert len(reader) == 0
        assert list(reader) == []


@pytest.mark.parametrize("mode", ["close", "finish"], ids=["while-draining", "before-folding-the-wal"])
def test_sigkill_during_close_keeps_reported_frames(tmp_path: Path, mode: str) -> None:
    """Killed inside close(): while it writes the queued frames (inside the transaction of frame
    STOP_IN_CLOSE, the earlier ones committed), or once every frame is committed but the final
    meta and the WAL checkpoint are not written ("finishing")."""
    session = tmp_path / "s"
    moment = "writing" if mode == "close" else "finishing"
    reported, lines, err = _record_and_kill(session, mode, lambda line, _: line in (moment, "closed"))
    assert "closing" in lines and moment in lines, f"the recorder did not get there: {lines[-5:]} {err[-2000:]}"
    assert "closed" not in lines, "close() finished before the kill: the test did not kill inside it"
    if mode == "finish":
        assert reported == QUEUED_BEFORE_CLOSE  # close() had committed them all
    else:
        assert STOP_IN_CLOSE - 10 < reported <= STOP_IN_CLOSE, lines[-5:]  # mid-drain, a transaction open
    with SessionReader(session) as reader:
        assert not reader.complete
        assert len(reader) >= reported, f"{len(reader)} of {reported} reported frames survived"
        _check_frames(reader, range(len(reader)))
        assert [reader.frame(k).source_index for k in range(len(reader))] == list(range(len(reader)))
