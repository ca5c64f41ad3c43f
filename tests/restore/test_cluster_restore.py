"""Restore onto a fresh machine from whatever nodes survive (issue #5).

Three real node processes (TLS, loopback) hold a ~100 MB archive. Every restore runs as a
restorer would on a new machine: a new empty HOME and working directory holding only
`archive.key` and `cluster.toml`, relative paths, the real CLI.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from samizdat.core.errors import ExitCode
from tests.conftest import make_key_file
from tests.netfaults import TcpLink
from tests.nodeproc import NodeProcess, dump_logs
from tests.restore.cluster import (
    SLOW_LINK_RATE,
    VIDEOS,
    Cluster,
    FreshMachine,
    assert_nothing_wrong_in_dest,
    build_archive,
    completed_files,
    kill,
    start_cluster,
    wait_for,
)
from tests.restore.proxy import LyingProxy
from tests.trees import assert_same_tree, read_tree

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    base = tmp_path_factory.mktemp("cluster")
    key = make_key_file(base / "archive.key")
    c = start_cluster(base, key, build_archive(base / "archive"))
    yield c
    c.stop()


@pytest.fixture
def machine(
    cluster: Cluster, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[FreshMachine]:
    m = FreshMachine.create(tmp_path, cluster)
    yield m
    for proxy in cluster.proxies:
        proxy.stop()  # type: ignore[attr-defined]
    cluster.proxies.clear()
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        dump_logs(cluster.nodes)
    cluster.ensure_running()  # leave the cluster whole for the next test


def source_bytes(c: Cluster, node: NodeProcess, summary: dict) -> int:  # type: ignore[type-arg]
    return next(s["bytes"] for s in summary["sources"] if s["source"] == c.label(node))


def by_label(c: Cluster, summary: dict) -> dict[str, dict]:  # type: ignore[type-arg]
    return {s["source"]: s for s in summary["sources"]}


def restore_through(
    cluster: Cluster, machine: FreshMachine, event: Callable[[], object], *sources: str
) -> tuple[dict, str]:  # type: ignore[type-arg]
    """A full restore from `sources` (default: the machine's cluster.toml) during which
    `event` happens, once three videos are complete; it must still finish and match the
    source tree. Returns the --json summary and stderr."""
    dest = machine.cwd / "restored"
    where = sources or ("--cluster", "cluster.toml")
    proc = machine.spawn("restore", "--key", "archive.key", *where, "--json", "restored")
    try:
        assert wait_for(lambda: len(completed_files(dest, cluster.source)) >= 3, 120)
        assert proc.poll() is None, "restore finished before the event"
        event()
        out, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            kill(proc)
    assert proc.returncode == 0, err.decode()
    assert_same_tree(cluster.source, dest)
    return json.loads(out), err.decode()


def test_full_restore_with_one_node_stopped_beforehand(
    cluster: Cluster, machine: FreshMachine
) -> None:
    paris = cluster.by_name("paris")  # the node the archive was pushed to
    paris.stop()
    code, summary, err = machine.restore("--cluster", "cluster.toml")
    assert code == 0, err
    assert_same_tree(cluster.source, machine.cwd / "restored")
    assert summary is not None and summary["snapshot"] == cluster.snapshot_id
    assert summary["files"] == len(
        [n for n in read_tree(cluster.source).values() if n.kind == "file"]
    )
    assert any(cluster.label(paris) in u for u in summary["unreachable"]), summary
    assert "unusable" in err and cluster.label(paris) in err
    used = {s["source"]: s["chunks"] for s in summary["sources"]}
    assert cluster.label(paris) not in used
    assert len(used) == 2 and all(n > 0 for n in used.values()), used  # both survivors used
    assert sorted(os.listdir(machine.cwd)) == ["archive.key", "cluster.toml", "restored"]
    assert machine.home_is_untouched()


def test_node_killed_with_sigkill_during_restore(cluster: Cluster, machine: FreshMachine) -> None:
    victim = cluster.by_name("berlin")
    labels = machine.slow_links(cluster)
    summary, err = restore_through(cluster, machine, victim.kill)
    report = by_label(cluster, summary)[labels[victim.name]]
    assert report["chunks"] > 0, report  # it served before it died
    assert report["failures"] >= 1, (summary, err)  # ... its failure noticed and survived
    others = sum(s["chunks"] for s in summary["sources"] if s is not report)
    assert others > report["chunks"]
    assert labels[victim.name] in err  # reported to the user


def test_malicious_node_serving_wrong_bytes_is_demoted(
    cluster: Cluster, machine: FreshMachine
) -> None:
    oslo = cluster.by_name("oslo")
    liar = LyingProxy(oslo.client(cluster.key.key), mode="flip", every=3)
    cluster.proxies.append(liar)
    paris, berlin = cluster.by_name("paris"), cluster.by_name("berlin")
    code, summary, err = machine.restore(
        "--node", liar.address, "--node", paris.address, "--node", berlin.address
    )
    assert code == 0, err
    assert_same_tree(cluster.source, machine.cwd / "restored")
    assert summary is not None
    report = by_label(cluster, summary)[liar.address]
    assert liar.flipped >= 1
    assert report["dropped"] and report["corrupt_chunks"] >= 1, report
    assert "do not match" in report["reason"]
    assert f"source {liar.address} served" in err and "do not match their id" in err


def test_malicious_only_source_fails_without_writing_wrong_bytes(
    cluster: Cluster, machine: FreshMachine
) -> None:
    liar = LyingProxy(cluster.by_name("oslo").client(cluster.key.key), mode="flip", every=40)
    cluster.proxies.append(liar)
    code, _, err = machine.restore("--node", liar.address)
    assert code == 1, err
    assert "is not available from any source" in err and liar.address in err, err
    assert "run the same command again" in err
    assert "Traceback" not in err
    partial = assert_nothing_wrong_in_dest(cluster.source, machine.cwd / "restored")
    assert not partial, partial  # the file being written when it failed was discarded


def test_withholding_node_is_routed_around(cluster: Cluster, machine: FreshMachine) -> None:
    liar = LyingProxy(cluster.by_name("oslo").client(cluster.key.key), mode="withhold")
    cluster.proxies.append(liar)
    code, summary, err = machine.restore(
        "--node", liar.address, "--node", cluster.by_name("paris").address
    )
    assert code == 0, err
    assert_same_tree(cluster.source, machine.cwd / "restored")
    assert summary is not None and by_label(cluster, summary)[liar.address]["chunks"] == 0


def test_interrupted_restore_resumes_and_fetches_less(
    cluster: Cluster, machine: FreshMachine
) -> None:
    code, out, err = machine.run(
        "verify", "--key", "archive.key", "--cluster", "cluster.toml", "--json"
    )
    assert code == 0, err
    total_chunks = json.loads(out)["chunks_fetched"]
    machine.slow_links(cluster)
    dest = machine.cwd / "restored"
    args = ["restore", "--key", "archive.key", "--cluster", "cluster.toml", "--json", "restored"]
    proc = machine.spawn(*args)
    try:
        assert wait_for(lambda: len(completed_files(dest, cluster.source)) >= VIDEOS // 3, 120)
        assert proc.poll() is None, "restore finished before it could be interrupted"
        kill(proc)  # SIGKILL: no cleanup of any kind runs
    finally:
        if proc.poll() is None:
            kill(proc)
    done_before = completed_files(dest, cluster.source)
    assert len(done_before) < VIDEOS
    # Nothing under a final name is incomplete or wrong; partial files are hidden.
    assert_nothing_wrong_in_dest(cluster.source, dest)

    code, out, err = machine.run(*args)
    assert code == 0, err
    summary = json.loads(out)
    assert_same_tree(cluster.source, dest)  # no partial file left over either
    assert summary["skipped_files"] >= len(done_before)
    assert 0 < summary["chunks_fetched"] < total_chunks, (summary["chunks_fetched"], total_chunks)
    # A third run has nothing left to fetch but the tree.
    code, out, err = machine.run(*args)
    assert code == 0, err
    again = json.loads(out)
    assert again["files"] == 0 and again["chunks_fetched"] <= 2
    code, out, _ = machine.run(*args[:-2], "restored")  # human summary names the count
    assert code == 0 and "chunks fetched" in out


def test_partial_restore_of_files_and_directories(cluster: Cluster, machine: FreshMachine) -> None:
    wanted = ["videos/clip-03.bin", "évidence/日本語 ディレクトリ", "top level.txt"]
    code, _, err = machine.run(
        "restore", "--key", "archive.key", "--cluster", "cluster.toml", *wanted, "part"
    )
    assert code == 0, err
    original = read_tree(cluster.source)
    restored = read_tree(machine.cwd / "part")
    expect = {
        rel
        for rel in original
        if any(rel == w.encode() or rel.startswith(w.encode() + b"/") for w in wanted)
    }
    parents = {b"videos", "évidence".encode()}
    assert set(restored) == expect | parents, set(restored) ^ (expect | parents)
    for rel in expect:
        assert restored[rel] == original[rel], rel

    # A path the snapshot does not have: a clear usage error, nothing written.
    code, out, err = machine.run(
        "restore", "--key", "archive.key", "--cluster", "cluster.toml", "videos/nope.bin", "none"
    )
    assert code == 2 and "not in the snapshot: videos/nope.bin" in err, err
    assert not (machine.cwd / "none").exists() or not any((machine.cwd / "none").iterdir())
    code, _, err = machine.run(
        "restore", "--key", "archive.key", "--cluster", "cluster.toml", "../etc", "none"
    )
    assert code == 2 and "'..' is not allowed" in err


def test_verify_from_cluster_writes_nothing(cluster: Cluster, machine: FreshMachine) -> None:
    code, out, err = machine.run("verify", "--key", "archive.key", "--cluster", "cluster.toml")
    assert code == 0, err
    assert out.startswith("verified snapshot " + cluster.snapshot_id[:16])
    assert sorted(os.listdir(machine.cwd)) == ["archive.key", "cluster.toml"]
    assert machine.home_is_untouched()


def _listing(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def test_restore_from_a_copied_node_directory(
    cluster: Cluster, machine: FreshMachine, tmp_path: Path
) -> None:
    """A stopped node's directory copied with cp -a (a disk carried across a border): no
    node process, no network source, the same verification."""
    oslo = cluster.by_name("oslo")
    oslo.stop()
    carried = tmp_path / "usb" / "oslo"
    carried.parent.mkdir()
    subprocess.run(["cp", "-a", str(oslo.directory), str(carried)], check=True)
    oslo.start()
    ro = tmp_path / "usb-ro"
    mounted = False
    if os.geteuid() == 0 and shutil.which("mount"):  # mount it read-only, as one should
        ro.mkdir()
        mounted = (
            subprocess.run(
                ["mount", "--bind", "-o", "ro", str(carried), str(ro)], capture_output=True
            ).returncode
            == 0
        )
        if mounted:
            subprocess.run(["mount", "-o", "remount,bind,ro", str(ro)], check=True)
    store = ro if mounted else carried
    before = _listing(carried)
    try:
        code, summary, err = machine.restore("--store", str(store / "data"))
        assert code == 0, err
        assert_same_tree(cluster.source, machine.cwd / "restored")
        assert summary is not None and summary["sources"][0]["source"].startswith("store:")
        code, out, err = machine.run("verify", "--key", "archive.key", "--store", str(store))
        assert code == 0 and out.startswith("verified snapshot"), err
    finally:
        if mounted:
            subprocess.run(["umount", str(ro)], check=False)
    assert _listing(carried) == before, "the carried store was modified"


def test_corrupted_store_copy_is_detected(
    cluster: Cluster, machine: FreshMachine, tmp_path: Path
) -> None:
    """The carried disk was tampered with: the flipped chunk is refused, every file written
    is authentic, and adding a live node as a second source completes the restore."""
    from tests.damage import pack_files

    oslo = cluster.by_name("oslo")
    oslo.stop()
    carried = tmp_path / "oslo-copy"
    subprocess.run(["cp", "-a", str(oslo.directory), str(carried)], check=True)
    oslo.start()
    blob = max(pack_files(carried / "data"), key=lambda p: p.stat().st_size)
    raw = bytearray(blob.read_bytes())
    for pos in range(len(raw) // 3, len(raw), len(raw) // 4):
        raw[pos] ^= 0x10
    blob.write_bytes(bytes(raw))
    code, _, err = machine.restore("--store", str(carried), dest="from-copy")
    assert code == ExitCode.INCOMPLETE and "Traceback" not in err, err
    assert "could not be restored" in err and "damaged copy" in err, err
    assert_nothing_wrong_in_dest(cluster.source, machine.cwd / "from-copy")
    code, summary, err = machine.restore(
        "--store", str(carried), "--node", cluster.by_name("paris").address, dest="from-copy"
    )
    assert code == 0, err
    assert_same_tree(cluster.source, machine.cwd / "from-copy")


def test_ctrl_c_leaves_no_partial_file_and_rerun_continues(
    cluster: Cluster, machine: FreshMachine
) -> None:
    machine.slow_links(cluster)
    dest = machine.cwd / "restored"
    args = ["restore", "--key", "archive.key", "--cluster", "cluster.toml", "restored"]
    proc = machine.spawn(*args)
    try:
        assert wait_for(lambda: len(completed_files(dest, cluster.source)) >= 2, 120)
        assert proc.poll() is None, "restore finished before it could be interrupted"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            kill(proc)
    assert proc.returncode == 130, err.decode()
    assert "run the same command again" in err.decode() and "Traceback" not in err.decode()
    assert not assert_nothing_wrong_in_dest(cluster.source, dest)  # partial file cleaned up
    code, out, err2 = machine.run(*args)
    assert code == 0, err2
    assert_same_tree(cluster.source, dest)


def test_lost_network_mid_restore_recovers(cluster: Cluster, machine: FreshMachine) -> None:
    """The only source's network drops (every connection reset, new ones refused) for two
    seconds in the middle of the restore: it backs off, reconnects and finishes."""
    paris = cluster.by_name("paris")
    link = TcpLink(paris.port, rate=3 * SLOW_LINK_RATE)

    def lose_network() -> None:
        link.cut()
        time.sleep(2)
        link.restore()

    try:
        address = f"{paris.node_id}@127.0.0.1:{link.port}"
        summary, _ = restore_through(cluster, machine, lose_network, "--node", address)
        (report,) = summary["sources"]
        assert report["failures"] >= 1 and not report["dropped"], report
    finally:
        link.close()


def test_node_whose_link_goes_silent_mid_restore_is_routed_around(
    cluster: Cluster, machine: FreshMachine
) -> None:
    """A black hole, not a closed connection: the node's traffic stops with nothing reset
    (a seized node behind a firewall that drops its packets). The restore finishes from the
    others, and names the silent node."""
    labels = machine.slow_links(cluster)
    silent = cluster.proxies[1]
    silent_label = labels[cluster.nodes[1].name]
    summary, err = restore_through(cluster, machine, silent.freeze)  # type: ignore[attr-defined]
    report = by_label(cluster, summary)[silent_label]
    assert report["overtaken"] >= 1 and not report["dropped"], report
    assert f"source {silent_label} was slow or stopped answering" in err
