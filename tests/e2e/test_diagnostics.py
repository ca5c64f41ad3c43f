"""A running node and its signals: SIGUSR1 dumps stacks, SIGHUP reloads, SIGTERM stops cleanly."""

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


def test_sighup_reloads_and_sigterm_stops_cleanly_under_a_signal_storm(
    node: NodeProcess,
) -> None:
    assert node.proc is not None
    for _ in range(50):
        node.proc.send_signal(signal.SIGHUP)
        time.sleep(0.002)
    assert node.status().node_id == node.node_id  # kept serving through the reloads
    deadline = time.monotonic() + 10
    while "config reloaded" not in node.logs() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "config reloaded" in node.logs()
    node.proc.send_signal(signal.SIGHUP)
    assert node.stop(timeout=15) == 0
    log = node.logs()
    assert "stopping (SIGTERM)" in log and "stopped cleanly" in log, log[-2000:]
