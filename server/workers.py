"""Starting the node's background workers (replication, scrub)."""

from __future__ import annotations

from samizdat.server.runtime import NodeRuntime


def start_workers(node: NodeRuntime) -> None:
    """Start replication and scrub threads for `node` (no-op until those land)."""
