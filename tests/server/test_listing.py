"""A node's listings (GetStatus counters, metrics, ListSnapshots pages) from the records it
parsed once (samizdat.server.listing): the same answers as parsing every record each time,
records stored later included, and a revocation hiding a writer's records at once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, make_wsgi_app

from samizdat.core.custody import sign_custody_record
from samizdat.core.keys import ArchiveKey
from samizdat.core.records import Snapshot
from samizdat.server.listing import RecordFacts, RecordIndex
from samizdat.server.runtime import NodeRuntime
from samizdat.server.snapshots import accept_snapshot
from samizdat.v1 import records_pb2 as pb
from tests.conftest import KeyFile
from tests.crafted import craft_snapshot, file_entry
from tests.nodeproc import NodeProcess

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def runtime(tmp_path: Path, archive_key: KeyFile, other_key: KeyFile) -> Iterator[NodeRuntime]:
    """A node (not serving) hosting both test archives."""
    proc = NodeProcess(tmp_path / "node")
    proc.init()
    proc.host(archive_key.archive_id)
    proc.host(other_key.archive_id)
    node = NodeRuntime(proc.directory)
    yield node
    node.close()


def store(node: NodeRuntime, key: ArchiveKey, sequence: int) -> Snapshot:
    crafted = craft_snapshot(key, [file_entry(b"f", b"content %d" % sequence)], sequence)
    node.store.put_chunks(crafted.blobs)
    snap, new = accept_snapshot(
        node.store,
        crafted.snapshot.signed,
        node.config.hosted_archives,
        require_complete=True,
        custody=node.custody,
    )
    assert new
    return snap


def listed_ids(node: NodeRuntime, archive_id: bytes = b"") -> list[bytes]:
    """The ids a ListSnapshots page lists, checked against GetStatus's counters."""
    page = node.list_snapshots(archive_id, 0)
    ids = [item.snapshot_id for item in page.snapshots]
    if not archive_id:
        assert [c.snapshot_id for c in node.snapshot_counters()] == ids
    return ids


def test_facts_match_the_records_and_later_records_are_read(
    runtime: NodeRuntime, archive_key: KeyFile, other_key: KeyFile
) -> None:
    a1 = store(runtime, archive_key.key, 1)
    b1 = store(runtime, other_key.key, 1)
    assert listed_ids(runtime) == [bytes(a1.id), bytes(b1.id)]
    a2 = store(runtime, archive_key.key, 2)  # stored after the first walk
    assert listed_ids(runtime) == [bytes(a1.id), bytes(b1.id), bytes(a2.id)]
    assert listed_ids(runtime, bytes(archive_key.key.archive_id)) == [bytes(a1.id), bytes(a2.id)]
    (counters,) = [c for c in runtime.snapshot_counters() if c.snapshot_id == bytes(a2.id)]
    assert counters.archive_id == bytes(archive_key.key.archive_id)
    assert counters.position == 3 and counters.chunks_held == counters.chunks_total > 0
    page = runtime.list_snapshots(b"", 1)
    assert [item.position for item in page.snapshots] == [2, 3]
    assert page.snapshots[1].signed == a2.signed


def test_records_beyond_the_cache_limit_are_parsed_each_walk(
    runtime: NodeRuntime, archive_key: KeyFile
) -> None:
    snaps = [store(runtime, archive_key.key, n) for n in range(1, 6)]
    unbounded = RecordIndex(runtime.store)
    bounded = RecordIndex(runtime.store, limit=2)

    def facts(index: RecordIndex, after: int) -> list[RecordFacts]:
        return list(index.after(after))

    for after in range(7):
        assert facts(bounded, after) == facts(unbounded, after)
    full = facts(unbounded, 0)
    assert [f.snapshot_id for f in full] == [bytes(s.id) for s in snaps]
    assert [f.position for f in full] == [1, 2, 3, 4, 5]
    assert {f.archive_id for f in full} == {bytes(archive_key.key.archive_id)}
    assert all(f.writer_key == b"" and f.size > 0 for f in full)


def test_revoking_a_writer_hides_its_records_at_once(
    runtime: NodeRuntime, archive_key: KeyFile
) -> None:
    root = archive_key.key
    writer, cert = root.delegate(pb.MEMBER_ROLE_WRITER, "amal", serial=1)
    runtime.custody.accept(cert.signed)
    by_root = store(runtime, root, 1)
    kept = store(runtime, writer, 2)
    later = store(runtime, writer, 3)
    ids = [bytes(by_root.id), bytes(kept.id), bytes(later.id)]
    assert listed_ids(runtime) == ids  # all parsed and kept by the listing

    revocation = sign_custody_record(
        root,
        pb.CustodyRecord(
            serial=2,
            key_revocation=pb.KeyRevocation(
                member_key=writer.member_key, kept_snapshot_ids=[kept.id], last_sequence=2
            ),
        ),
    )
    runtime.custody.accept(revocation.signed)
    assert listed_ids(runtime) == ids[:2]
    metrics = scrape(runtime)
    assert later.id.hex()[:12] not in metrics and kept.id.hex()[:12] in metrics


OPENMETRICS = "application/openmetrics-text; version=1.0.0"


def scrape(node: NodeRuntime, accept: str = "", app=None) -> str:  # type: ignore[no-untyped-def]
    """One GET /metrics through the node's metrics app (or `app`), its body."""
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/metrics", "QUERY_STRING": ""}
    if accept:
        environ["HTTP_ACCEPT"] = accept
    body = b"".join((app or node.metrics.wsgi_app())(environ, lambda status, headers: None))
    return body.decode()


def rows(text: str) -> list[str]:
    return [line for line in text.splitlines() if "samizdat_snapshot_" in line]


def test_a_scrape_renders_the_snapshot_rows_once_per_change_of_the_records(
    runtime: NodeRuntime, archive_key: KeyFile
) -> None:
    """Review R13: the per-snapshot rows (most of a scrape at 10,000 snapshots) are rendered
    once per change of the records and format, never staler than the store, and read as
    prometheus_client renders them itself, in text and OpenMetrics format."""
    first = store(runtime, archive_key.key, 1)
    app = runtime.metrics.wsgi_app()
    full = CollectorRegistry()
    for collector in (runtime.metrics.registry, runtime.metrics.rows):
        full.register(collector)  # type: ignore[arg-type]
    plain = make_wsgi_app(full)

    def builds() -> float | None:
        return runtime.metrics.registry.get_sample_value(
            "samizdat_shared_builds_total", {"answer": "metrics_rows"}
        )

    texts = [scrape(runtime, app=app) for _ in range(3)]
    assert builds() == 1
    assert all(rows(t) == rows(scrape(runtime, app=plain)) for t in texts)
    assert sum(first.id.hex()[:12] in line for line in rows(texts[0])) == 3  # held, total, missing
    open_text = scrape(runtime, OPENMETRICS, app)
    assert builds() == 2  # one per format
    assert rows(open_text) == rows(scrape(runtime, OPENMETRICS, plain))
    assert open_text.endswith("# EOF\n") and open_text.count("# EOF") == 1

    second = store(runtime, archive_key.key, 2)
    assert second.id.hex()[:12] in scrape(runtime, app=app)  # fresh after the change
    assert builds() == 3
