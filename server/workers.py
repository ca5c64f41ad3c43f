"""Starting the node's background workers (replication, scrub)."""

from __future__ import annotations

from samizdat.server.replication import Replicator
from samizdat.server.runtime import NodeRuntime


def start_workers(node: NodeRuntime) -> None:
    """Start the replication loop for `node`."""
    replicator = Replicator(node)
    node.replicator = replicator  # type: ignore[assignment]
    replicator.start()
    node.workers.append(replicator.thread)
