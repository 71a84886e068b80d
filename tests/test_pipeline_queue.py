"""LatestQueue: newest wins, drops counted, close wakes consumers, lossless mode waits."""

import threading
import time

import pytest

from handviz.pipeline.latest_queue import LatestQueue, QueueClosed

WAIT_S = 30.0  # only ever reached by a hang


def test_full_queue_drops_the_oldest_and_counts():
    q: LatestQueue[int] = LatestQueue(1)
    assert q.put(1) == 0
    assert q.put(2) == 1
    assert q.put(3) == 1
    assert q.dropped == 2
    assert q.get(timeout=0) == 3
    assert len(q) == 0


def test_larger_queue_keeps_the_newest_items_in_order():
    q: LatestQueue[int] = LatestQueue(2)
    for i in range(5):
        q.put(i)
    assert q.dropped == 3
    assert [q.get(timeout=0), q.get(timeout=0)] == [3, 4]


def test_get_times_out_when_empty():
    q: LatestQueue[int] = LatestQueue()
    with pytest.raises(TimeoutError):
        q.get(timeout=0.01)


def test_close_wakes_a_waiting_consumer_after_draining():
    q: LatestQueue[int] = LatestQueue()
    q.put(7)
    q.close()
    assert q.get(timeout=0) == 7  # items put before close are still handed out
    outcome = []

    def consumer():
        try:
            q.get(timeout=WAIT_S)
        except QueueClosed:
            outcome.append("closed")

    t = threading.Thread(target=consumer)
    t.start()
    t.join(WAIT_S)  # the queue is closed already: get() returns at once; the limit only catches a hang
    assert outcome == ["closed"]
    assert q.put(8) == 0 and len(q) == 0  # puts after close are ignored


def test_close_releases_a_blocked_consumer():
    q: LatestQueue[int] = LatestQueue()
    started = threading.Event()
    outcome = []

    def consumer():
        started.set()
        try:
            q.get()
        except QueueClosed:
            outcome.append("closed")

    t = threading.Thread(target=consumer)
    t.start()
    assert started.wait(WAIT_S)
    q.close()
    t.join(WAIT_S)  # returns at once when close() wakes the consumer; the limit only catches a hang
    assert not t.is_alive() and outcome == ["closed"]


def test_waiting_put_loses_nothing():
    q: LatestQueue[int] = LatestQueue(1)
    received = []

    def consumer():
        while True:
            try:
                received.append(q.get(timeout=2))
            except QueueClosed:
                return
            time.sleep(0.001)  # a consumer slower than the producer (stand-in work, not a wait)

    t = threading.Thread(target=consumer)
    t.start()
    for i in range(50):
        q.put(i, wait=True)
    q.close()
    t.join(WAIT_S)
    assert received == list(range(50))
    assert q.dropped == 0
