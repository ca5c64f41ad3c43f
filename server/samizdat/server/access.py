"""Who may call what: tokens checked against the node's config (hosted archives, peers) and
its custody records (revoked nodes and member keys)."""

from __future__ import annotations

from collections.abc import Sequence

from samizdat.core.errors import AccessDenied, NotHosted, Revoked
from samizdat.core.ids import short_hex
from samizdat.core.tokens import Caller, verify_token
from samizdat.rpc.limits import AUTH_METADATA
from samizdat.server.config import NodeConfig
from samizdat.server.custody import NodeCustody
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


def require_reader(caller: Caller, config: NodeConfig, custody: NodeCustody) -> None:
    """Readers: a configured peer not revoked (by node.toml or by a custody record), or a
    holder of a hosted archive's key or of an unrevoked member key certified by it."""
    if caller.role == pb.ROLE_PEER:
        if caller.node_id in config.revoked:
            raise Revoked(f"node {caller.node_id[:8]} is revoked")
        if caller.node_id in custody.revoked_nodes():
            raise Revoked(f"node {caller.node_id[:8]} is revoked by the archive key")
        if not any(p.node_id == caller.node_id for p in config.peers):
            raise AccessDenied(f"node {caller.node_id[:8]} is not a configured peer")
        return
    if caller.role in (pb.ROLE_READER, pb.ROLE_WRITER):
        if caller.archive_id not in config.hosted_archives:
            raise NotHosted("this node does not host the archive of the presented key")
        _require_unrevoked(caller, custody)
        return
    raise AccessDenied("token grants no read access")


def require_writer(
    caller: Caller, config: NodeConfig, archive_id: bytes, custody: NodeCustody
) -> None:
    """Writers: a holder of the archive key of a hosted archive, or of an unrevoked writer key
    it certified, for that archive only."""
    if caller.role != pb.ROLE_WRITER or caller.archive_id != archive_id:
        raise AccessDenied("writing needs a writer token signed by this archive's key")
    if archive_id not in config.hosted_archives:
        raise NotHosted(f"this node does not host archive {short_hex(archive_id)}")
    _require_unrevoked(caller, custody)


def _require_unrevoked(caller: Caller, custody: NodeCustody) -> None:
    if caller.member_key and custody.key_revoked(caller.archive_id, caller.member_key):
        raise Revoked(f"key {short_hex(caller.member_key)} is revoked by the archive key")
