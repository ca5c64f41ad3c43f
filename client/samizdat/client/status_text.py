"""The human form of `samizdat status`: a summary line, tables of nodes, peers, corrupt chunks,
snapshots and custody, then the findings. The stable form is --json (samizdat.client.status).

Most of what is shown comes from the nodes (or from custody records); cells are plain strings
or lists of parts, colours only `Styled` words of ours, and samizdat.client.terminal cleans
every part (no escapes, no markup from data)."""

from __future__ import annotations

from typing import Any

from samizdat.client.health import HealthReport, NodeReport, Policy, Severity, SnapshotReport
from samizdat.client.terminal import Line, Styled, human_bytes, print_table, say
from samizdat.client.terminal import clean as terminal_clean


def print_status(report: HealthReport, code: int) -> None:
    """Print `report` for people; `code` is the command's exit code (healthy or not)."""
    _print_summary(report, code)
    _print_nodes(report)
    _print_peers(report)
    _print_corrupt_chunks(report)
    _print_snapshots(report)
    _print_custody(report)
    _print_findings(report)


def _ago(seconds: float) -> str:
    seconds = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


RED, GREEN, YELLOW = "red", "green", "yellow"


def _node_text(text: str, width: int = 0) -> str:
    """Words a node sent, clipped to `width` (0: whole) once made printable (the terminal
    cleans them again: an idempotent escape)."""
    text = terminal_clean(text)
    if width and len(text) > width:
        text = text[: width - 3] + "..."
    return text


def _print_summary(report: HealthReport, code: int) -> None:
    policy = report.policy
    state = {0: Styled("HEALTHY", GREEN), 1: Styled("DEGRADED", RED)}.get(
        code, Styled("ERROR", RED)
    )
    say(
        Styled("samizdat status", "bold"),
        ": ",
        state,
        f" - {report.reachable} of {len(report.nodes)} nodes "
        f"reachable, {len(report.snapshots)} snapshot(s); target {policy.replicas} copies in "
        f">= {policy.min_jurisdictions} jurisdictions",
    )


# ------------------------------------------------------------------------------ nodes


def _print_nodes(report: HealthReport) -> None:
    print_table(
        "Nodes",
        ["node", "jur", "id", "version", "stored", "free disk", "scrub", "audit"],
        [_node_row(n) for n in report.nodes],
    )


def _node_row(n: NodeReport) -> list[Line]:
    s = n.status
    if n.revoked or s is None:
        state = Styled("revoked" if n.revoked else "unreachable", RED)
        return [n.name, n.jurisdiction or "-", n.node_id[:8] or "-", "-", state, "", "", ""]
    return [
        n.name,
        n.jurisdiction or "-",
        _node_text(s.node_id[:8]),
        _node_text(s.software_version),
        f"{s.chunks_stored} chunks, {human_bytes(s.bytes_stored)}",
        human_bytes(s.disk_free_bytes),
        _scrub_cell(s),
        _audit_cell(n),
    ]


def _scrub_cell(s: Any) -> str:
    sc = s.scrub
    if not sc.enabled:
        state = "disabled"
    elif sc.pass_started_unix:
        state = f"pass {sc.passes_completed + 1}: {sc.position_fraction:.0%}"
    elif sc.last_pass_completed_unix:
        last = _ago(s.time_unix - sc.last_pass_completed_unix)
        state = f"{sc.passes_completed} passes, last {last}"
    else:
        state = "no pass yet"
    found = ""
    if sc.corrupt_found:
        found = f"; {sc.corrupt_found} corrupt found, {sc.repaired} repaired"
    pending = f", {sc.pending_repair} awaiting repair" if sc.pending_repair else ""
    return state + found + pending


def _audit_cell(n: NodeReport) -> Line:
    a = n.audit
    if a is None:
        return "-"
    if a.error:
        return [Styled("FAILED", RED), f" {a.error}"]
    if a.failed:
        return [
            Styled("FAILED", RED),
            f" {len(a.missing)} missing, {len(a.corrupt)} corrupt of {a.sampled}",
        ]
    return f"{a.ok}/{a.sampled} ok"


# ------------------------------------------------------------------------------ peers


def _print_peers(report: HealthReport) -> None:
    names = {(n.status.node_id if n.status else n.node_id): n.name for n in report.nodes}
    rows = [
        _peer_row(n, p, names) for n in report.nodes if n.status is not None for p in n.status.peers
    ]
    if rows:
        print_table(
            "Peers",
            ["node", "peer", "last sync", "pulled", "bad data received", "last error"],
            rows,
        )


def _peer_row(n: NodeReport, p: Any, names: dict[str, str]) -> list[Line]:
    assert n.status is not None
    peer = names.get(p.node_id, p.node_id[:8])
    if p.revoked:
        return [n.name, peer, "revoked", "", "", ""]
    last: Line = (
        _ago(n.status.time_unix - p.last_success_unix)
        if p.last_success_unix
        else Styled("never", YELLOW)
    )
    counts = f"{p.bad_chunks_received} chunks, {p.bad_records_received} records"
    bad: Line = Styled(counts, RED) if p.bad_chunks_received or p.bad_records_received else counts
    return [
        n.name,
        peer,
        last,
        f"{p.chunks_pulled} chunks, {human_bytes(p.bytes_pulled)}",
        bad,
        _node_text(p.last_error or p.last_offence, 60),
    ]


# --------------------------------------------------------------------- corrupt chunks


def _print_corrupt_chunks(report: HealthReport) -> None:
    rows = [
        _finding_row(n, f)
        for n in report.nodes
        if n.status is not None
        for f in n.status.scrub.findings[:5]
    ]
    if rows:
        print_table(
            "Corrupt chunks found (latest 5 per node)",
            ["node", "chunk", "found", "what", "state"],
            rows,
        )


def _finding_row(n: NodeReport, f: Any) -> list[Line]:
    assert n.status is not None
    now = n.status.time_unix
    fate: Line = Styled("awaiting repair", RED)
    if f.repaired_unix:
        fate = f"repaired {_ago(now - f.repaired_unix)}"
    return [n.name, f.chunk_id.hex()[:16], _ago(now - f.found_unix), _node_text(f.detail, 70), fate]


# -------------------------------------------------------------------------- snapshots


def _print_snapshots(report: HealthReport) -> None:
    hosts = [n.name for n in report.nodes]
    rows = [_snapshot_row(report, r, hosts) for r in report.snapshots]
    if rows:
        print_table(
            "Snapshots (chunks held/total per node; v = verified)",
            [
                "snapshot",
                "seq",
                "size",
                *hosts,
                "copies",
                "verified",
                "jurisdictions",
                "below target",
                "single copy",
            ],
            rows,
        )


def _snapshot_row(report: HealthReport, r: SnapshotReport, hosts: list[str]) -> list[Line]:
    return [
        r.snapshot.id.hex()[:16],
        str(r.snapshot.record.sequence),
        human_bytes(r.bytes_total),
        *_holding_cells(report, r, hosts),
        _copies_cell(r, report.policy),
        str(r.verified_copies),
        ", ".join(f"{j or '?'}:{c}" for j, c in r.jurisdictions.items()) or "-",
        str(r.below_target),
        str(r.at_risk),
    ]


def _holding_cells(report: HealthReport, r: SnapshotReport, hosts: list[str]) -> list[Line]:
    """Per node: revoked, down, n/a (does not list it) or chunks held/total."""
    down = {n.name for n in report.nodes if not n.reachable}
    revoked = {n.name for n in report.nodes if n.revoked}
    held = {h.node: h for h in r.holdings}
    cells: list[Line] = []
    for name in hosts:
        h = held.get(name)
        if name in revoked:
            cells.append(Styled("revoked", RED))
        elif name in down:
            cells.append(Styled("down", RED))
        elif h is None:
            cells.append("n/a")
        elif h.complete:
            cells.append([Styled(f"{h.held}/{h.total}", GREEN), " v" if h.verified_by else ""])
        else:
            cells.append(Styled(f"{h.held}/{h.total}", YELLOW))
    return cells


def _copies_cell(r: SnapshotReport, policy: Policy) -> Line:
    copies = f"{r.complete_copies}/{policy.replicas}"
    return Styled(copies, RED) if r.complete_copies < policy.replicas else copies


# ---------------------------------------------------------------- custody, findings


def _print_custody(report: HealthReport) -> None:
    """Revoked nodes and the writer and reader keys the archive key certified or revoked."""
    rows: list[list[Line]] = [
        [r.name or "-", r.node_id[:16], r.archive_id_hex[:12], Styled("revoked", RED), r.reason]
        for r in report.revoked_nodes
    ]
    if rows:
        print_table("Revoked nodes", ["node", "id", "archive", "state", "reason"], rows)
    rows = []
    for m in report.members:
        state: Line = (
            [
                Styled("revoked", RED),
                f" (keeps {m.kept_snapshots} snapshots, up to sequence {m.last_sequence})",
            ]
            if m.revoked
            else Styled("active", GREEN)
        )
        rows.append([m.name or "-", m.role or "?", m.key_hex[:16], m.archive_id_hex[:12], state])
    if rows:
        print_table("Writer and reader keys", ["name", "role", "key id", "archive", "state"], rows)


def _print_findings(report: HealthReport) -> None:
    for f in report.findings:
        mark = (
            Styled("problem", RED) if f.severity is Severity.DEGRADED else Styled("warning", YELLOW)
        )
        say(mark, f": {f.message}")
