"""Replication health: from node status answers to typed findings (docs/status.md).

`analyse()` is a pure function of what the nodes answered (and of the audit results): it
never raises for a health problem; every problem is a `Finding`, and the command decides
the exit code from their severities. It costs O(snapshots x nodes + nodes x peers): it
reads only the per-snapshot held/total counters every node keeps, never a chunk id.

Replication figures per snapshot, over the reachable nodes that host its archive:
- a node with held == total holds every chunk: a *complete copy* (exact);
- how many chunks have fewer than r copies is exact when the complete copies decide it, and
  otherwise bounded from the partial nodes' held counts (`chunks_below`), reported as
  [min, max];
- a complete copy is *verified* when the node finished a scrub pass that started within the
  window (every chunk it holds was hashed since), or when this run's audit fetched samples
  of the snapshot from it and all matched their ids.
"""

from __future__ import annotations

import enum
from collections import Counter
from dataclasses import dataclass, field

from samizdat.core.custody import CustodyState
from samizdat.core.ids import ArchiveId, short_hex
from samizdat.core.peer import ListedSnapshot
from samizdat.core.records import Snapshot
from samizdat.v1 import node_pb2 as npb
from samizdat.v1 import records_pb2 as pb

SCHEMA_VERSION = 1


class Severity(enum.StrEnum):
    DEGRADED = "degraded"  # makes `samizdat status` exit 1
    WARNING = "warning"  # reported, exit code unaffected


@dataclass(frozen=True)
class Finding:
    """One health problem. `code` is stable (documented in docs/status.md)."""

    severity: Severity
    code: str
    message: str
    node: str | None = None
    snapshot_id_hex: str | None = None


@dataclass(frozen=True)
class Bound:
    """A count known to lie in [low, high]; exact when low == high."""

    low: int
    high: int

    @property
    def exact(self) -> bool:
        return self.low == self.high

    def __str__(self) -> str:
        return str(self.low) if self.exact else f"{self.low}..{self.high}"


@dataclass(frozen=True)
class Policy:
    replicas: int
    min_jurisdictions: int
    verified_window: float  # seconds
    stale_sync: float = 3600.0  # a peer not synced for longer is reported
    max_clock_skew: float = 300.0
    low_disk_fraction: float = 0.05


@dataclass
class AuditResult:
    """What an audit of one node found: samples fetched and checked against their ids."""

    sampled: int = 0
    ok: int = 0
    missing: list[str] = field(default_factory=list)  # chunk id hex
    corrupt: list[str] = field(default_factory=list)
    error: str | None = None
    snapshots_passed: set[bytes] = field(default_factory=set)

    @property
    def failed(self) -> bool:
        return bool(self.missing or self.corrupt or self.error)


@dataclass
class NodeReport:
    """One node as the custodian names it, and what it answered (if anything)."""

    name: str
    address: str
    node_id: str = ""
    jurisdiction: str = ""  # from the cluster file; else what the node says
    status: npb.GetStatusResponse | None = None
    error: str | None = None
    snapshots: dict[bytes, ListedSnapshot] = field(default_factory=dict)  # verified only
    forged_records: int = 0
    audit: AuditResult | None = None
    local_time: float = 0.0  # the custodian's clock when the answer came
    revoked: str = ""  # why, when a custody record of the archive key revoked this node

    @property
    def reachable(self) -> bool:
        return self.status is not None

    def hosts(self, archive_id: ArchiveId) -> bool:
        return self.status is not None and archive_id in self.status.hosted_archive_ids

    def scrub_verified(self, window: float) -> bool:
        s = self.status
        if s is None or not s.scrub.verified_since_unix:
            return False
        return s.time_unix - s.scrub.verified_since_unix <= window


@dataclass
class Holding:
    node: str
    held: int
    total: int
    bytes_total: int
    verified_by: list[str]

    @property
    def complete(self) -> bool:
        return self.total > 0 and self.held >= self.total


@dataclass
class SnapshotReport:
    snapshot: Snapshot
    total: int
    bytes_total: int
    holdings: list[Holding]  # every reachable node hosting the archive, in node order
    complete_copies: int
    verified_copies: int
    verified_by_scrub: int
    verified_by_audit: int
    jurisdictions: dict[str, int]  # complete copies per jurisdiction ("" = unlabelled)
    below_target: Bound
    at_risk: Bound  # chunks with at most one copy
    lost: Bound  # chunks with no copy on any reachable node
    revoked_holders: list[str] = field(default_factory=list)  # revoked nodes listing it


@dataclass(frozen=True)
class Member:
    """A writer or reader key the archive key certified or revoked (from verified records)."""

    archive_id_hex: str
    key_hex: str
    role: str  # "writer", "reader", or "" when only its revocation is known
    name: str
    revoked: bool
    last_sequence: int | None  # of its kept snapshots, when revoked
    kept_snapshots: int | None


@dataclass(frozen=True)
class RevokedNode:
    node_id: str
    name: str | None  # when the cluster names it
    archive_id_hex: str
    reason: str


@dataclass
class HealthReport:
    policy: Policy
    nodes: list[NodeReport]
    snapshots: list[SnapshotReport]
    findings: list[Finding]
    members: list[Member] = field(default_factory=list)
    revoked_nodes: list[RevokedNode] = field(default_factory=list)

    @property
    def reachable(self) -> int:
        return sum(1 for n in self.nodes if n.reachable)

    @property
    def degraded(self) -> bool:
        return any(f.severity is Severity.DEGRADED for f in self.findings)


def chunks_below(r: int, complete: int, partial_held: list[int], total: int) -> Bound:
    """Tight bounds on how many of `total` chunks have fewer than `r` copies, given
    `complete` nodes that hold all of them and partial nodes holding `partial_held` of them
    each (which ones is unknown). O(nodes x log total).

    With d = r - complete copies still needed from the k partial nodes, a chunk is below
    target iff at least s = k - d + 1 of them lack it. Node i lacks m_i chunks. Exactly B
    chunks can be below target iff  sum(min(m_i, B)) >= s*B  (enough gaps to give B chunks
    s each) and  sum(max(0, m_i - B)) <= (s-1)*(T - B)  (the other gaps fit on the T - B
    chunks at target, at most s-1 each); both sides are concave in B, so the feasible B form
    an interval, found by bisection. See docs/status.md.
    """
    need = r - complete
    if need <= 0 or total <= 0:
        return Bound(0, 0)
    k = len(partial_held)
    if k < need:
        return Bound(total, total)
    s = k - need + 1
    gaps = [total - min(max(h, 0), total) for h in partial_held]

    def enough_gaps(b: int) -> bool:  # true on [0, high]
        return sum(min(m, b) for m in gaps) >= s * b

    def rest_fits(b: int) -> bool:  # true on [low, total]
        return sum(max(0, m - b) for m in gaps) <= (s - 1) * (total - b)

    lo, hi = 0, total  # high: the last b with enough_gaps
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if enough_gaps(mid) else (lo, mid - 1)
    high = lo
    lo, hi = 0, total  # low: the first b where the rest fits
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if rest_fits(mid) else (mid + 1, hi)
    low = lo
    return Bound(min(low, high), high)


def _short(raw: bytes) -> str:
    return raw.hex()[:16]


def _label(snap: Snapshot) -> str:
    return (
        f"snapshot {_short(snap.id)} (archive {short_hex(snap.archive_id)}, "
        f"sequence {snap.record.sequence})"
    )


def analyse(
    nodes: list[NodeReport],
    records: dict[bytes, Snapshot],
    policy: Policy,
    custody: CustodyState | None = None,
) -> HealthReport:
    """Compute replication figures and findings from the nodes' answers (see module doc).
    Nodes revoked by a verified custody record are marked, and their copies not counted."""
    custody = custody or CustodyState()
    revoked = custody.revoked_nodes()
    named = {(n.status.node_id if n.status else n.node_id): n for n in nodes}
    for node_id, rec in revoked.items():
        n = named.get(node_id)
        reason = rec.record.node_revocation.reason
        if n is not None:
            n.revoked = f"revoked by archive {short_hex(rec.archive_id)}" + (
                f" ({reason})" if reason else ""
            )
    findings: list[Finding] = []
    findings += _node_findings(nodes, policy)
    reports = []
    ordered = sorted(
        records.values(),
        key=lambda s: (s.archive_id.hex(), s.record.sequence, s.record.created_unix_ns),
    )
    for snap in ordered:
        report = _snapshot_report(snap, nodes, policy)
        reports.append(report)
        findings += _snapshot_findings(report, policy)
    if records == {} and any(n.reachable for n in nodes):
        findings.append(
            Finding(Severity.WARNING, "no_snapshots", "no reachable node holds any snapshot")
        )
    archives = sorted({a for n in nodes if n.status for a in n.status.hosted_archive_ids})
    revoked_list = [
        RevokedNode(
            node_id,
            named[node_id].name if node_id in named else None,
            rec.archive_id.hex(),
            rec.record.node_revocation.reason,
        )
        for node_id, rec in sorted(revoked.items())
    ]
    return HealthReport(policy, nodes, reports, findings, _members(custody, archives), revoked_list)


def _members(custody: CustodyState, archives: list[bytes]) -> list[Member]:
    roles = {pb.MEMBER_ROLE_WRITER: "writer", pb.MEMBER_ROLE_READER: "reader"}
    out = []
    for archive in archives:
        for key, cert, revoked in custody.members(archive):
            revocation = custody.key_revocation(archive, key) if revoked else None
            out.append(
                Member(
                    archive.hex(),
                    key.hex(),
                    roles.get(cert.role, "") if cert else "",
                    cert.name if cert else "",
                    revoked,
                    revocation.last_sequence if revocation else None,
                    len(revocation.kept_snapshot_ids) if revocation else None,
                )
            )
    return out


def _snapshot_report(snap: Snapshot, nodes: list[NodeReport], policy: Policy) -> SnapshotReport:
    sid = bytes(snap.id)
    holders = [n for n in nodes if n.hosts(snap.archive_id) and not n.revoked]
    stored = {n.name: n.snapshots.get(sid) for n in holders}
    total = max((s.chunks_total for s in stored.values() if s is not None), default=0)
    bytes_total = max((s.bytes_total for s in stored.values() if s is not None), default=0)
    if total == 0:  # known to no reachable node hosting it: estimate from the record
        total = len(snap.record.chunk_list_ids) + snap.record.totals.chunks
        bytes_total = snap.record.totals.stored_bytes
    holdings, partial = [], []
    per_jurisdiction: Counter[str] = Counter()
    by_scrub = by_audit = verified = 0
    for n in holders:
        s = stored[n.name]
        held = s.chunks_held if s is not None else 0
        h = Holding(
            n.name,
            held,
            s.chunks_total if s is not None else total,
            s.bytes_total if s is not None else bytes_total,
            [],
        )
        if h.complete:
            per_jurisdiction[n.jurisdiction] += 1
            audit_failed = n.audit is not None and n.audit.failed
            if n.scrub_verified(policy.verified_window) and not audit_failed:
                h.verified_by.append("scrub")
                by_scrub += 1
            if n.audit is not None and not audit_failed and sid in n.audit.snapshots_passed:
                h.verified_by.append("audit")
                by_audit += 1
            verified += bool(h.verified_by)
        else:
            partial.append(held)
        holdings.append(h)
    complete = sum(per_jurisdiction.values())
    return SnapshotReport(
        snapshot=snap,
        total=total,
        bytes_total=bytes_total,
        holdings=holdings,
        complete_copies=complete,
        verified_copies=verified,
        verified_by_scrub=by_scrub,
        verified_by_audit=by_audit,
        jurisdictions=dict(sorted(per_jurisdiction.items())),
        below_target=chunks_below(policy.replicas, complete, partial, total),
        at_risk=chunks_below(2, complete, partial, total),
        lost=chunks_below(1, complete, partial, total),
        revoked_holders=[n.name for n in nodes if n.revoked and sid in n.snapshots],
    )


def _snapshot_findings(r: SnapshotReport, policy: Policy) -> list[Finding]:
    out = []
    sid = r.snapshot.id.hex()
    label = _label(r.snapshot)

    def add(severity: Severity, code: str, message: str, node: str | None = None) -> None:
        out.append(Finding(severity, code, message, node, sid))

    if r.complete_copies < policy.replicas:
        add(
            Severity.DEGRADED,
            "snapshot_below_target",
            f"{label}: {r.complete_copies} complete copies, target {policy.replicas}; "
            f"{r.below_target} of {r.total} chunks below target"
            + (
                f" (copies on revoked nodes not counted: {', '.join(r.revoked_holders)})"
                if r.revoked_holders
                else ""
            ),
        )
    if r.lost.high > 0:
        add(
            Severity.DEGRADED,
            "chunks_lost",
            f"{label}: {r.lost} of {r.total} chunks are held by no reachable node",
        )
    elif r.at_risk.high > 0:
        add(
            Severity.DEGRADED if r.at_risk.low else Severity.WARNING,
            "chunks_at_risk",
            f"{label}: {r.at_risk} of {r.total} chunks have a single copy",
        )
    distinct = len([j for j in r.jurisdictions if j])
    if distinct < policy.min_jurisdictions:
        add(
            Severity.DEGRADED,
            "too_few_jurisdictions",
            f"{label}: complete copies in {distinct} jurisdiction(s) "
            f"({', '.join(j or '?' for j in r.jurisdictions) or 'none'}), "
            f"target {policy.min_jurisdictions}",
        )
    if r.complete_copies and r.verified_copies < min(policy.replicas, r.complete_copies):
        add(
            Severity.WARNING,
            "copies_unverified",
            f"{label}: {r.verified_copies} of {r.complete_copies} complete copies verified "
            "(scrubbed or audited within the window)",
        )
    for h in r.holdings:
        if not h.complete and r.complete_copies >= policy.replicas:
            add(
                Severity.WARNING,
                "snapshot_incomplete_on_node",
                f"{label}: node {h.node} holds {h.held} of {h.total} chunks",
                h.node,
            )
    return out


def _node_findings(nodes: list[NodeReport], policy: Policy) -> list[Finding]:
    out = []
    names = {n.status.node_id if n.status else n.node_id: n.name for n in nodes}
    versions = {n.status.software_version for n in nodes if n.status is not None}
    for n in nodes:

        def add(severity: Severity, code: str, message: str, node: str = n.name) -> None:
            out.append(Finding(severity, code, message, node))

        s = n.status
        if n.revoked:  # its health no longer matters; only that it is still listed
            add(
                Severity.WARNING,
                "node_revoked",
                f"node {n.name} is {n.revoked}: its copies are not counted; remove it from "
                "the cluster file",
            )
            continue
        if s is None:
            add(Severity.DEGRADED, "node_unreachable", f"node {n.name} is unreachable: {n.error}")
            continue
        if n.forged_records:
            add(
                Severity.DEGRADED,
                "forged_records",
                f"node {n.name} lists {n.forged_records} snapshot record(s) whose signature "
                "does not verify",
            )
        if s.quarantined_chunks:
            add(
                Severity.DEGRADED,
                "corrupt_chunks",
                f"node {n.name}: {s.quarantined_chunks} corrupt chunk(s) removed, awaiting "
                "repair from a peer",
            )
        if s.unrepairable_chunks:
            add(
                Severity.DEGRADED,
                "unrepairable_chunks",
                f"node {n.name}: {s.unrepairable_chunks} corrupt chunk(s) that no reachable "
                "peer holds: unless one gets them back, the files they belong to are damaged "
                "in every copy; `samizdat verify --key FILE` names those files",
            )
        if n.audit is not None and n.audit.failed:
            a = n.audit
            detail = a.error or (
                f"{len(a.missing)} missing and {len(a.corrupt)} corrupt of "
                f"{a.sampled} sampled chunks it claims to hold"
            )
            add(Severity.DEGRADED, "audit_failed", f"node {n.name} failed the audit: {detail}")
        if not s.scrub.enabled:
            add(Severity.WARNING, "scrub_disabled", f"node {n.name}: scrub is disabled")
        elif not n.scrub_verified(policy.verified_window):
            add(
                Severity.WARNING,
                "scrub_stale",
                f"node {n.name}: no scrub pass completed within the verification window",
            )
        if abs(s.time_unix - n.local_time) > policy.max_clock_skew:
            add(
                Severity.WARNING,
                "clock_skew",
                f"node {n.name}: clock off by {int(s.time_unix - n.local_time)} s",
            )
        if s.disk_total_bytes and s.disk_free_bytes < policy.low_disk_fraction * s.disk_total_bytes:
            add(
                Severity.WARNING,
                "disk_low",
                f"node {n.name}: only {s.disk_free_bytes} bytes free on its disk",
            )
        if len(versions) > 1:
            add(
                Severity.WARNING,
                "version_mismatch",
                f"node {n.name} runs samizdat {s.software_version}; the cluster runs "
                f"{', '.join(sorted(versions))}",
            )
        for p in s.peers:
            if p.revoked:
                continue
            peer = names.get(p.node_id, p.node_id[:12])
            if p.bad_chunks_received or p.bad_records_received or p.offences:
                add(
                    Severity.WARNING,
                    "bad_data_from_peer",
                    f"node {n.name} received {p.bad_chunks_received} bad chunk(s) and "
                    f"{p.bad_records_received} forged record(s) from peer {peer}, "
                    f"{p.offences} wrong answer(s) in all"
                    + (f" (last: {p.last_offence})" if p.last_offence else ""),
                )
            if not p.last_success_unix or s.time_unix - p.last_success_unix > policy.stale_sync:
                add(
                    Severity.WARNING,
                    "peer_sync_stale",
                    f"node {n.name} has not synced with peer {peer} "
                    + (
                        "yet"
                        if not p.last_success_unix
                        else f"for {s.time_unix - p.last_success_unix} s"
                    )
                    + (f": {p.last_error}" if p.last_error else ""),
                )
        if n.jurisdiction and s.jurisdiction and n.jurisdiction != s.jurisdiction:
            add(
                Severity.WARNING,
                "jurisdiction_mismatch",
                f"node {n.name} says it is in {s.jurisdiction}, the cluster file says "
                f"{n.jurisdiction}",
            )
    return out
