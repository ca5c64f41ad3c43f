"""Starting the node's background workers (replication, scrub)."""

from __future__ import annotations

from samizdat.core.peer import Peer
from samizdat.rpc.address import NodeAddress
from samizdat.rpc.grpcpeer import GrpcPeer
from samizdat.rpc.remote import NodeClient, peer_tokens
from samizdat.server.config import PeerConfig
from samizdat.server.replication import Connect, Replicator
from samizdat.server.runtime import NodeRuntime
from samizdat.server.scrub import Scrubber
from samizdat.v1 import records_pb2 as pb


def grpc_peers(node: NodeRuntime) -> Connect:
    """Peers reached over gRPC, TLS pinned to their node id, with tokens of this node's key."""
    tokens = peer_tokens(node.identity.key)

    def connect(cfg: PeerConfig) -> Peer:
        address = NodeAddress.parse(f"{cfg.node_id}@{cfg.address}")
        return GrpcPeer(NodeClient(address, tokens=tokens), has_role=pb.ROLE_PEER)

    return connect


def start_workers(node: NodeRuntime) -> None:
    """Start the replication loop and the scrubber of `node`."""
    replicator = Replicator(node, grpc_peers(node))
    node.replicator = replicator
    replicator.start()
    node.workers.append(replicator.thread)
    scrubber = Scrubber(node)
    node.scrubber = scrubber
    scrubber.start()
    node.workers.append(scrubber.thread)
