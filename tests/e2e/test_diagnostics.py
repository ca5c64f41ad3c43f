"""SIGUSR1 makes a running node write every thread's stack to its log, and nothing else."""

from __future__ import annotations

import signal
import time

import pytest

from tests.nodeproc import NodeProcess

pytestmark = pytest.mark.timeout(60)


def test_sigusr1_dumps_thread_stacks_and_the_node_keeps_serving(node: NodeProcess) -> None:
    assert node.proc is not None
    node.proc.send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + 10
    while "most recent call first" not in node.logs() and time.monotonic() < deadline:
        time.sleep(0.1)
    log = node.logs()
    assert "most recent call first" in log, log[-2000:]
    assert "Thread 0x" in log  # all threads, not only the main one
    assert node.status().node_id == node.node_id  # still answering
