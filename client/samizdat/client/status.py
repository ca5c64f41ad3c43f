"""`samizdat status`: ask every node for its counters, audit on request, report health.

One GetStatus call and one paged listing per node, in parallel; each answer is O(snapshots)
(docs/status.md). The snapshot records listed are verified against the archive key they name,
so a node cannot invent snapshots. The command's exit code comes from the findings' severities.
"""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from samizdat.client.cluster import NO_NODE, Cluster, named_nodes
from samizdat.client.cluster import ClusterNode as Target
from samizdat.client.health import (
    SCHEMA_VERSION,
    Bound,
    HealthReport,
    NodeReport,
    Policy,
    Severity,
    analyse,
)
from samizdat.client.listing import ListingVerifier, verify_custody_records
from samizdat.core.custody import CustodyState
from samizdat.core.errors import ExitCode, SamizdatError, UsageError
from samizdat.core.keys import ArchiveKey
from samizdat.core.records import Snapshot
from samizdat.rpc.remote import NodeClient

# The exit codes of `samizdat status`, by what they mean there.
EXIT_HEALTHY, EXIT_DEGRADED, EXIT_ERROR = ExitCode.OK, ExitCode.FAILURE, ExitCode.USAGE
DEFAULT_WINDOW = "7d"
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> float:
    """'90', '90s', '15m', '12h', '7d', '2w' -> seconds."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", text)
    if not m:
        raise UsageError(f"bad duration {text!r}: use e.g. 3600, 30m, 12h, 7d")
    return float(m.group(1)) * _UNITS[m.group(2) or "s"]


@dataclass(frozen=True)
class Options:
    replicas: int | None = None
    min_jurisdictions: int | None = None
    verified_window: float = 7 * 86400.0
    audit: int = 0
    timeout: float = 10.0


def targets_from(
    nodes: tuple[str, ...], cluster: Path | None
) -> tuple[list[Target], Cluster | None]:
    """The nodes to ask (each named once), and the cluster file (or None)."""
    targets, loaded = named_nodes(nodes, cluster)
    if not targets:
        raise UsageError(NO_NODE)
    seen: set[str] = set()
    for t in targets:
        if t.name in seen:
            raise UsageError(f"node {t.name} is named twice")
        seen.add(t.name)
    return targets, loaded


def _ask(
    index: int, target: Target, client: NodeClient, timeout: float, listing: ListingVerifier
) -> NodeReport:
    """GetStatus, then the listing, each page verified as it comes (`listing.take`)."""
    report = NodeReport(
        target.name, str(target.address), target.address.node_id, target.jurisdiction
    )
    try:
        status = client.status(timeout=timeout)
        for page in client.snapshot_pages(timeout=timeout):
            listing.take(index, page.snapshots)
    except SamizdatError as e:  # a listing refused midway (PeerMisbehaved) counts for nothing
        listing.failed(index)
        report.error = str(e)
        return report
    report.status = status
    report.local_time = time.time()
    report.node_id = report.status.node_id
    report.jurisdiction = report.jurisdiction or report.status.jurisdiction
    return report


def collect(
    targets: list[Target], clients: dict[str, NodeClient], timeout: float
) -> tuple[list[NodeReport], dict[bytes, Snapshot], CustodyState]:
    """GetStatus and the paged listing from every node in parallel, each page verified as it
    arrives (samizdat.client.listing.ListingVerifier: what is kept of a node's listing is its
    verified entries and a count of the rest); verify the custody records they list, each
    distinct signed record once (snapshots a revoked writer made and its revocation does not
    keep are left out)."""
    listing = ListingVerifier([t.name for t in targets])
    with ThreadPoolExecutor(max(1, min(16, len(targets)))) as pool:
        reports = list(
            pool.map(
                lambda it: _ask(it[0], it[1], clients[it[1].name], timeout, listing),
                enumerate(targets),
            )
        )
    custody, bad = verify_custody_records(
        [r.status.custody_records if r.status else () for r in reports]
    )
    for report, count in zip(reports, bad, strict=True):
        report.forged_records += count
    verified = listing.result(custody)
    for report, count in zip(reports, verified.forged_count, strict=True):
        report.forged_records += count
    for sid, entries in verified.listed_by.items():
        for report, item in zip(reports, entries, strict=True):
            if item is not None:
                report.snapshots[sid] = item
    return reports, verified.snapshots, custody


def policy_for(options: Options, cluster: Any, reports: list[NodeReport]) -> Policy:
    replicas = options.replicas or (
        cluster.replicas if cluster is not None else min(3, len(reports))
    )
    minimum = options.min_jurisdictions
    if minimum is None and cluster is not None:
        minimum = cluster.min_jurisdictions
    if minimum is None:  # as spread out as the nodes allow, up to one per copy
        minimum = min(replicas, len({r.jurisdiction for r in reports if r.jurisdiction}))
    return Policy(
        replicas=replicas, min_jurisdictions=minimum, verified_window=options.verified_window
    )


def check_status(
    targets: list[Target], cluster: Any, options: Options, key: ArchiveKey | None = None
) -> HealthReport:
    """Ask, audit (when options.audit and a key are given) and analyse."""
    clients = {t.name: NodeClient(t.address, key) for t in targets}
    try:
        reports, records, custody = collect(targets, clients, options.timeout)
        if options.audit and key is not None:
            from samizdat.client.audit import audit
            from samizdat.rpc.grpcpeer import GrpcPeer

            peers = {name: GrpcPeer(client) for name, client in clients.items()}
            audit(reports, peers, records, key.archive_id, options.audit)
        return analyse(reports, records, policy_for(options, cluster, reports), custody)
    finally:
        for c in clients.values():
            c.close()


def exit_code(report: HealthReport) -> ExitCode:
    if report.reachable == 0:
        return EXIT_ERROR
    return EXIT_DEGRADED if report.degraded else EXIT_HEALTHY


# ------------------------------------------------------------------- JSON (docs/status.md)


def _bound(b: Bound) -> dict[str, Any]:
    return {"min": b.low, "max": b.high, "exact": b.exact}


def _node_json(n: NodeReport) -> dict[str, Any]:
    s = n.status
    out: dict[str, Any] = {
        "name": n.name,
        "address": n.address,
        "reachable": s is not None,
        "error": n.error,
        "node_id": n.node_id or None,
        "jurisdiction": n.jurisdiction or None,
        "revoked": bool(n.revoked),
        "revoked_reason": n.revoked or None,
    }
    if s is None:
        return out
    out.update(
        {
            "name_reported": s.name,
            "software_version": s.software_version,
            "hosted_archives": [a.hex() for a in s.hosted_archive_ids],
            "chunks_stored": s.chunks_stored,
            "bytes_stored": s.bytes_stored,
            "disk_free_bytes": s.disk_free_bytes,
            "disk_total_bytes": s.disk_total_bytes,
            "quarantined_chunks": s.quarantined_chunks,
            "unrepairable_chunks": s.unrepairable_chunks,
            "clock_skew_seconds": round(s.time_unix - n.local_time),
            "forged_records": n.forged_records,
            "scrub": {
                "enabled": s.scrub.enabled,
                "rate_mb": s.scrub.rate_mb,
                "pass_started_unix": s.scrub.pass_started_unix or None,
                "position_fraction": s.scrub.position_fraction,
                "chunks_checked": s.scrub.chunks_checked,
                "bytes_checked": s.scrub.bytes_checked,
                "passes_completed": s.scrub.passes_completed,
                "last_pass_completed_unix": s.scrub.last_pass_completed_unix or None,
                "verified_since_unix": s.scrub.verified_since_unix or None,
                "corrupt_found": s.scrub.corrupt_found,
                "repaired": s.scrub.repaired,
                "pending_repair": s.scrub.pending_repair,
                "findings": [
                    {
                        "chunk_id": f.chunk_id.hex(),
                        "found_unix": f.found_unix,
                        "repaired_unix": f.repaired_unix or None,
                        "detail": f.detail,
                    }
                    for f in s.scrub.findings
                ],
            },
            "peers": [
                {
                    "node_id": p.node_id,
                    "name": None,
                    "address": p.address or None,
                    "jurisdiction": p.jurisdiction or None,
                    "revoked": p.revoked,
                    "last_success_unix": p.last_success_unix or None,
                    "last_error": p.last_error or None,
                    "chunks_pulled": p.chunks_pulled,
                    "bytes_pulled": p.bytes_pulled,
                    "bad_chunks_received": p.bad_chunks_received,
                    "bad_records_received": p.bad_records_received,
                    "last_offence": p.last_offence or None,
                    "last_offence_unix": p.last_offence_unix or None,
                    "offences": p.offences,
                    "backed_off_until_unix": p.backed_off_until_unix or None,
                }
                for p in s.peers
            ],
            "audit": None
            if n.audit is None
            else {
                "sampled": n.audit.sampled,
                "ok": n.audit.ok,
                "missing": n.audit.missing,
                "corrupt": n.audit.corrupt,
                "error": n.audit.error,
                "passed": not n.audit.failed,
            },
        }
    )
    return out


def to_json(report: HealthReport, code: int, generated: float | None = None) -> dict[str, Any]:
    """The `--json` document; its schema is docs/status.schema.json."""
    names = {(n.status.node_id if n.status else n.node_id): n.name for n in report.nodes}
    nodes = [_node_json(n) for n in report.nodes]
    for node in nodes:
        for peer in node.get("peers", []):
            peer["name"] = names.get(peer["node_id"])
    snapshots = []
    for r in report.snapshots:
        rec = r.snapshot.record
        snapshots.append(
            {
                "snapshot_id": r.snapshot.id.hex(),
                "archive_id": r.snapshot.archive_id.hex(),
                "sequence": rec.sequence,
                "created_unix": rec.created_unix_ns // 1_000_000_000,
                "files": rec.totals.files,
                "plaintext_bytes": rec.totals.plaintext_bytes,
                "chunks_total": r.total,
                "bytes_total": r.bytes_total,
                "nodes": [
                    {
                        "name": h.node,
                        "chunks_held": h.held,
                        "chunks_total": h.total,
                        "bytes_total": h.bytes_total,
                        "bytes_held": h.bytes_total if h.complete else (0 if not h.held else None),
                        "complete": h.complete,
                        "verified_by": h.verified_by,
                    }
                    for h in r.holdings
                ],
                "replication": {
                    "target": report.policy.replicas,
                    "complete_copies": r.complete_copies,
                    "verified_copies": r.verified_copies,
                    "verified_by_scrub": r.verified_by_scrub,
                    "verified_by_audit": r.verified_by_audit,
                    "copies_per_jurisdiction": r.jurisdictions,
                    "jurisdictions": len([j for j in r.jurisdictions if j]),
                    "chunks_below_target": _bound(r.below_target),
                    "chunks_at_risk": _bound(r.at_risk),
                    "chunks_lost": _bound(r.lost),
                },
            }
        )
    statuses: dict[int, str] = {EXIT_HEALTHY: "healthy", EXIT_DEGRADED: "degraded"}
    status = statuses.get(code, "error")
    degraded = [f for f in report.findings if f.severity is Severity.DEGRADED]
    return {
        "schema": "samizdat.status",
        "schema_version": SCHEMA_VERSION,
        "generated_unix": int(generated if generated is not None else time.time()),
        "status": status,
        "exit_code": code,
        "policy": {
            "replicas": report.policy.replicas,
            "min_jurisdictions": report.policy.min_jurisdictions,
            "verified_window_seconds": int(report.policy.verified_window),
        },
        "summary": {
            "nodes": len(report.nodes),
            "nodes_reachable": report.reachable,
            "snapshots": len(report.snapshots),
            "snapshots_below_target": sum(
                1 for r in report.snapshots if r.complete_copies < report.policy.replicas
            ),
            "problems": len(degraded),
            "warnings": len(report.findings) - len(degraded),
        },
        "nodes": nodes,
        "snapshots": snapshots,
        "custody": {
            "revoked_nodes": [
                {
                    "node_id": r.node_id,
                    "name": r.name,
                    "archive_id": r.archive_id_hex,
                    "reason": r.reason or None,
                }
                for r in report.revoked_nodes
            ],
            "members": [
                {
                    "archive_id": m.archive_id_hex,
                    "key_id": m.key_hex,
                    "role": m.role or None,
                    "name": m.name or None,
                    "revoked": m.revoked,
                    "last_sequence": m.last_sequence,
                    "kept_snapshots": m.kept_snapshots,
                }
                for m in report.members
            ],
        },
        "findings": [
            {
                "severity": str(f.severity),
                "code": f.code,
                "message": f.message,
                "node": f.node,
                "snapshot_id": f.snapshot_id_hex,
            }
            for f in report.findings
        ],
    }
