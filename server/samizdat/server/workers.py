"""Starting the node's background workers (replication, scrub)."""

from __future__ import annotations

from samizdat.server.replication import Replicator
from samizdat.server.runtime import NodeRuntime
from samizdat.server.scrub import Scrubber


def start_workers(node: NodeRuntime) -> None:
    """Start the replication loop and the scrubber of `node`."""
    replicator = Replicator(node)
    node.replicator = replicator  # type: ignore[assignment]
    replicator.start()
    node.workers.append(replicator.thread)
    scrubber = Scrubber(node)
    node.scrubber = scrubber  # type: ignore[assignment]
    scrubber.start()
    node.workers.append(scrubber.thread)
