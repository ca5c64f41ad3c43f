"""Replication health in process: bounds, findings, exit codes and the JSON schema."""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from samizdat.client.health import (
    AuditResult,
    NodeReport,
    Policy,
    Severity,
    analyse,
    chunks_below,
)
from samizdat.client.status import (
    EXIT_DEGRADED,
    EXIT_ERROR,
    EXIT_HEALTHY,
    exit_code,
    parse_duration,
    to_json,
)
from samizdat.core.errors import UsageError
from samizdat.core.keys import ArchiveKey
from samizdat.core.records import Snapshot, sign_snapshot
from samizdat.v1 import node_pb2 as npb
from samizdat.v1 import records_pb2 as pb

SCHEMA = json.loads((Path(__file__).parents[2] / "docs" / "status.schema.json").read_text())
KEY = ArchiveKey(signing_seed=b"\x41" * 32, master_secret=b"\x42" * 32)
ARCHIVE = bytes(KEY.archive_id)
NOW = 1_800_000_000
DAY = 86400.0


def snapshot(sequence: int) -> Snapshot:
    record = pb.SnapshotRecord(
        sequence=sequence,
        chunk_list_ids=[bytes([sequence]) * 32],
        totals=pb.SnapshotTotals(chunks=99, stored_bytes=1000),
        created_unix_ns=NOW * 10**9,
    )
    return sign_snapshot(KEY, record)


def node(
    name: str,
    jurisdiction: str,
    holdings: list[tuple[Snapshot, int]],
    *,
    total: int = 100,
    verified_since: int = NOW - 3600,
    quarantined: int = 0,
    unrepairable: int = 0,
) -> NodeReport:
    status = npb.GetStatusResponse(
        node_id=name * 4,
        name=name,
        jurisdiction=jurisdiction,
        software_version="0.1.0",
        hosted_archive_ids=[ARCHIVE],
        chunks_stored=total,
        bytes_stored=1000,
        disk_free_bytes=10**12,
        disk_total_bytes=2 * 10**12,
        quarantined_chunks=quarantined,
        unrepairable_chunks=unrepairable,
        time_unix=NOW,
        scrub=npb.ScrubStatus(
            enabled=True,
            rate_mb=50,
            verified_since_unix=verified_since,
            passes_completed=1,
            last_pass_completed_unix=verified_since,
            pending_repair=quarantined,
        ),
    )
    report = NodeReport(
        name, f"127.0.0.1:{len(name)}", name * 4, jurisdiction, status, local_time=NOW
    )
    for snap, held in holdings:
        item = npb.StoredSnapshot(
            snapshot_id=bytes(snap.id),
            snapshot=snap.signed,
            chunks_held=held,
            chunks_total=total,
            bytes_total=1000,
        )
        status.snapshots.append(item)
        report.snapshots[bytes(snap.id)] = item
    return report


def down(name: str) -> NodeReport:
    return NodeReport(name, "127.0.0.1:1", "", "", error="connection refused")


POLICY = Policy(replicas=3, min_jurisdictions=2, verified_window=7 * DAY)


def records(*snaps: Snapshot) -> dict[bytes, Snapshot]:
    return {bytes(s.id): s for s in snaps}


def codes(report) -> set[tuple[str, str]]:  # type: ignore[no-untyped-def]
    return {(str(f.severity), f.code) for f in report.findings}


# ------------------------------------------------------------------------------ bounds


def brute_force_below(r: int, holdings: list[set[int]], total: int) -> int:
    return sum(1 for c in range(total) if sum(c in h for h in holdings) < r)


@settings(max_examples=300, deadline=None)
@given(
    st.integers(1, 4),
    st.integers(1, 12),
    st.lists(st.integers(0, 12), max_size=5),
    st.integers(0, 3),
    st.randoms(use_true_random=False),
)
def test_chunks_below_bounds_contain_every_possible_truth(
    r: int, total: int, partial: list[int], complete: int, rng: random.Random
) -> None:
    partial = [min(h, total - 1) for h in partial]  # partial nodes lack at least one chunk
    bound = chunks_below(r, complete, partial, total)
    assert 0 <= bound.low <= bound.high <= total
    for _ in range(20):  # any placement of the held chunks is consistent with the counters
        sets = [set(rng.sample(range(total), h)) for h in partial]
        sets += [set(range(total))] * complete
        assert bound.low <= brute_force_below(r, sets, total) <= bound.high


def test_chunks_below_is_exact_when_the_counters_decide() -> None:
    assert chunks_below(3, 3, [], 10).exact and chunks_below(3, 3, [], 10).low == 0
    assert chunks_below(3, 1, [4], 10).low == 10  # too few nodes left to reach 3
    b = chunks_below(2, 1, [7], 10)  # one partial node: exactly the chunks it lacks
    assert (b.low, b.high) == (3, 3)
    b = chunks_below(1, 0, [6, 6], 10)  # lost chunks: between 0 and 4
    assert (b.low, b.high) == (0, 4)
    b = chunks_below(2, 0, [6, 8], 10)  # below 2 copies: lacking on either node
    assert (b.low, b.high) == (4, 6)


@pytest.mark.parametrize("r", [1, 2, 3])
def test_bounds_are_tight(r: int) -> None:
    """Every count in the bound is reachable: min and max are met by some placement."""
    total = 5
    for held in itertools.product(range(total), repeat=3):
        b = chunks_below(r, 0, list(held), total)
        truths = {
            brute_force_below(r, [set(x), set(y), set(z)], total)
            for x in itertools.combinations(range(total), held[0])
            for y in itertools.combinations(range(total), held[1])
            for z in itertools.combinations(range(total), held[2])
        }
        assert (b.low, b.high) == (min(truths), max(truths)), held


# ---------------------------------------------------------------------------- findings


def test_healthy_cluster_has_no_findings_and_exit_0() -> None:
    s1, s2 = snapshot(1), snapshot(2)
    nodes = [node(n, j, [(s1, 100), (s2, 100)]) for n, j in (("a", "FR"), ("b", "DE"), ("c", "NO"))]
    report = analyse(nodes, records(s1, s2), POLICY)
    assert report.findings == []
    assert exit_code(report) == EXIT_HEALTHY
    for r in report.snapshots:
        assert (r.complete_copies, r.verified_copies) == (3, 3)
        assert r.jurisdictions == {"DE": 1, "FR": 1, "NO": 1}
        assert r.below_target.exact and r.below_target.low == 0
    jsonschema.validate(to_json(report, EXIT_HEALTHY), SCHEMA)


def test_unreachable_node_and_snapshots_below_target_are_named() -> None:
    s1, s2 = snapshot(1), snapshot(2)
    nodes = [
        node("a", "FR", [(s1, 100), (s2, 100)]),
        node("b", "DE", [(s1, 100), (s2, 40)]),
        down("c"),
    ]
    report = analyse(nodes, records(s1, s2), POLICY)
    assert exit_code(report) == EXIT_DEGRADED
    unreachable = [f for f in report.findings if f.code == "node_unreachable"]
    assert [f.node for f in unreachable] == ["c"]
    below = {f.snapshot_id_hex for f in report.findings if f.code == "snapshot_below_target"}
    assert below == {s1.id.hex(), s2.id.hex()}
    r2 = report.snapshots[1]
    assert r2.complete_copies == 1 and r2.below_target.low == 100  # only 2 nodes left
    assert (r2.at_risk.low, r2.at_risk.high) == (60, 60)  # exactly those b lacks
    assert ("degraded", "chunks_at_risk") in codes(report)
    jsonschema.validate(to_json(report, EXIT_DEGRADED), SCHEMA)


def test_no_reachable_node_is_exit_2() -> None:
    report = analyse([down("a"), down("b")], {}, POLICY)
    assert exit_code(report) == EXIT_ERROR
    jsonschema.validate(to_json(report, EXIT_ERROR), SCHEMA)


def test_jurisdictions_verification_and_node_problems() -> None:
    s1 = snapshot(1)
    nodes = [
        node("a", "FR", [(s1, 100)]),
        node("b", "FR", [(s1, 100)], verified_since=0),
        node(
            "c",
            "FR",
            [(s1, 100)],
            quarantined=2,
            unrepairable=1,
            verified_since=NOW - 30 * 86400,
        ),
    ]
    nodes[0].status.peers.append(
        npb.PeerSyncStatus(  # type: ignore[union-attr]
            node_id="bbbb",
            last_success_unix=NOW - 5,
            bad_chunks_received=3,
            last_offence="served a bad chunk",
        )
    )
    report = analyse(nodes, records(s1), POLICY)
    found = codes(report)
    assert ("degraded", "too_few_jurisdictions") in found
    assert ("degraded", "corrupt_chunks") in found
    (lost,) = [f for f in report.findings if f.code == "unrepairable_chunks"]
    assert lost.node == "c" and "1 corrupt chunk(s) that no reachable peer holds" in lost.message
    assert ("warning", "copies_unverified") in found
    assert ("warning", "scrub_stale") in found
    bad = [f for f in report.findings if f.code == "bad_data_from_peer"]
    assert bad and "peer b" in bad[0].message and bad[0].severity is Severity.WARNING
    assert report.snapshots[0].verified_copies == 1
    jsonschema.validate(to_json(report, exit_code(report)), SCHEMA)


def test_audit_turns_claims_into_verified_copies_or_exposes_a_liar() -> None:
    s1 = snapshot(1)
    nodes = [
        node(n, j, [(s1, 100)], verified_since=0)
        for n, j in (("a", "FR"), ("b", "DE"), ("c", "NO"))
    ]
    nodes[0].audit = AuditResult(sampled=5, ok=5, snapshots_passed={bytes(s1.id)})
    nodes[1].audit = AuditResult(sampled=5, ok=5, snapshots_passed={bytes(s1.id)})
    nodes[2].audit = AuditResult(sampled=5, ok=3, missing=["ab" * 32, "cd" * 32])
    report = analyse(nodes, records(s1), POLICY)
    r = report.snapshots[0]
    assert (r.complete_copies, r.verified_copies, r.verified_by_audit) == (3, 2, 2)
    liar = [f for f in report.findings if f.code == "audit_failed"]
    assert [f.node for f in liar] == ["c"] and liar[0].severity is Severity.DEGRADED
    doc = to_json(report, exit_code(report))
    jsonschema.validate(doc, SCHEMA)
    assert doc["nodes"][2]["audit"]["passed"] is False
    assert doc["snapshots"][0]["nodes"][0]["verified_by"] == ["audit"]


def test_node_missing_a_snapshot_record_counts_as_holding_nothing() -> None:
    s1, s2 = snapshot(1), snapshot(2)
    nodes = [
        node("a", "FR", [(s1, 100), (s2, 100)]),
        node("b", "DE", [(s1, 100)]),
        node("c", "NO", [(s1, 100), (s2, 100)]),
    ]
    report = analyse(nodes, records(s1, s2), Policy(2, 2, 7 * DAY))
    assert exit_code(report) == EXIT_HEALTHY  # two complete copies meet a target of 2
    late = [f for f in report.findings if f.code == "snapshot_incomplete_on_node"]
    assert [(f.node, f.snapshot_id_hex) for f in late] == [("b", s2.id.hex())]


def test_parse_duration() -> None:
    assert parse_duration("90") == 90 and parse_duration("15m") == 900
    assert parse_duration("7d") == 7 * DAY and parse_duration("1.5h") == 5400
    with pytest.raises(UsageError):
        parse_duration("soon")
