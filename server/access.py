"""Who may call what: tokens checked against the node's config (hosted archives, peers)."""

from __future__ import annotations

from collections.abc import Sequence

from samizdat.core.errors import AccessDenied, NotHosted
from samizdat.core.tokens import Caller, verify_token
from samizdat.rpc.limits import AUTH_METADATA
from samizdat.server.config import NodeConfig
from samizdat.v1 import records_pb2 as pb


def caller_from_metadata(
    metadata: Sequence[tuple[str, str | bytes]], config: NodeConfig, node_id: str
) -> Caller:
    """Return the verified caller of a call, or raise AccessDenied."""
    raw = next((v for k, v in metadata if k == AUTH_METADATA), None)
    if raw is None or isinstance(raw, str):
        raise AccessDenied("this call needs an authentication token (archive key or peer key)")
    try:
        return verify_token(raw, node_id)
    except AccessDenied:
        if config.tls:
            raise
        return verify_token(raw, "")  # plaintext loopback trials: no audience known


def require_reader(caller: Caller, config: NodeConfig) -> None:
    """Readers: a configured, unrevoked peer, or a holder of a hosted archive's key."""
    if caller.role == pb.ROLE_PEER:
        if caller.node_id in config.revoked:
            raise AccessDenied(f"node {caller.node_id[:8]} is revoked")
        if not any(p.node_id == caller.node_id for p in config.peers):
            raise AccessDenied(f"node {caller.node_id[:8]} is not a configured peer")
        return
    if caller.role in (pb.ROLE_READER, pb.ROLE_WRITER):
        if caller.archive_id not in config.hosted_archives:
            raise NotHosted("this node does not host the archive of the presented key")
        return
    raise AccessDenied("token grants no read access")


def require_writer(caller: Caller, config: NodeConfig, archive_id: bytes) -> None:
    """Writers: a holder of the archive key of a hosted archive, for that archive only."""
    if caller.role != pb.ROLE_WRITER or caller.archive_id != archive_id:
        raise AccessDenied("writing needs a writer token signed by this archive's key")
    if archive_id not in config.hosted_archives:
        raise NotHosted(f"this node does not host archive {archive_id.hex()[:12]}")
