"""The custodian's `samizdat key` / `node revoke` commands against nodes whose listings fail or
never end (review R16, R18).

- A seized node answering ListCustodyRecords with endless pages of junk kept `node revoke`
  (every key command: they read each node's custody records first, for the serial) reading
  and keeping for ever, the CLI growing ~200 MiB/s: the revocation of that very node never
  went out. Now the listing is bounded (samizdat.core.custody.CustodyListing), the node is
  left out, said so, and the command goes on with the others.
- `key revoke-writer` keeps only the writer's snapshots the named nodes list: with a node's
  listing failed, it signed, wrote and sent a revocation keeping none of that node's, so every
  node then refused the writer's legitimate snapshots. Now it refuses before signing, unless
  `--keep` names the snapshots to keep.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from samizdat.core.keys import load_key
from tests.conftest import KeyFile
from tests.e2e.test_custody_cluster import custody_kinds, listed, push, snapshot_of
from tests.healthcluster import make_tree
from tests.netfaults import EvilPeer
from tests.nodeproc import NodeProcess, run_cli, spawn_cli

pytestmark = pytest.mark.timeout(200)

FINISH_WITHIN = 120.0  # honest nodes need ~2 s; main never finished (stopped at RSS_LIMIT)
RSS_LIMIT = 1 << 30  # main's CLI passed this within seconds


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def watch(proc: subprocess.Popen[bytes]) -> tuple[bool, int, str]:
    """Wait for the CLI to end, at most FINISH_WITHIN s and until RSS_LIMIT (then stop it);
    return (ended by itself, peak RSS, stderr)."""
    deadline, peak = time.monotonic() + FINISH_WITHIN, 0
    try:
        while proc.poll() is None and time.monotonic() < deadline and peak < RSS_LIMIT:
            try:
                peak = max(peak, rss(proc.pid))
            except FileNotFoundError:  # ended meanwhile
                pass
            time.sleep(0.1)
        ended = proc.poll() is not None
    finally:
        if proc.poll() is None:
            proc.kill()
        _, err = proc.communicate(timeout=30)
    return ended, peak, err.decode()


def test_a_seized_nodes_endless_custody_listing_does_not_keep_its_revocation_out(
    node_factory: Callable[..., NodeProcess], archive_key: KeyFile, tmp_path: Path
) -> None:
    honest = node_factory("honest", host=[archive_key.archive_id])
    seized = EvilPeer(tmp_path / "seized", honest.address, "custody_endless", archive_key.key)
    seized.start()
    try:
        proc = spawn_cli(
            "node", "revoke", "--key", archive_key, seized.node_id, "--reason", "seized",
            "--node", f"{seized.node_id}@{seized.hostport}", "--node", honest.address,
        )  # fmt: skip
        ended, peak, err = watch(proc)
    finally:
        seized.stop()
    assert ended, f"still reading the seized node's custody listing (RSS {peak >> 20} MiB): {err}"
    assert proc.returncode == 0, err
    assert seized.node_id[:8] in err and "custody records not read" in err, err
    assert "did not sign" in err, err
    assert "node_revocation" in custody_kinds(honest)


def test_revoke_writer_signs_nothing_when_a_nodes_listing_failed(
    node_factory: Callable[..., NodeProcess], archive_key: KeyFile, tmp_path: Path
) -> None:
    node = node_factory("a", host=[archive_key.archive_id])
    code, out, err = run_cli(
        "key", "delegate", archive_key, "--name", "laptop", "--out", tmp_path / "w.key",
        "--node", node.address,
    )  # fmt: skip
    assert code == 0, err
    writer_id = out.strip().splitlines()[-1]
    code, out, err = push(tmp_path / "w.key", node, make_tree(tmp_path / "src", seed=1))
    assert code == 0, err
    good = snapshot_of(out)
    # A second node serving the same data answers every ListSnapshots "busy".
    busy = EvilPeer(tmp_path / "busy", node.address, "list_busy", load_key(archive_key.path))
    busy.start()
    try:
        busy_node = f"{busy.node_id}@{busy.hostport}"
        code, out, err = run_cli(
            "key", "revoke-writer", archive_key, writer_id, "--reason", "seized",
            "--node", busy_node, "--node", node.address, "--out", tmp_path / "r.rec",
        )  # fmt: skip
        assert code == 2, (code, out, err)
        assert "nothing signed" in err and busy.node_id[:8] in err, err
        assert not (tmp_path / "r.rec").exists()
        assert "key_revocation" not in custody_kinds(node)  # nothing sent
        assert busy.served_bad == 1

        # The custodian names what to keep: the revocation goes out, keeping it.
        code, out, err = run_cli(
            "key", "revoke-writer", archive_key, writer_id, "--reason", "seized",
            "--keep", good, "--node", busy_node, "--node", node.address,
            "--out", tmp_path / "r.rec",
        )  # fmt: skip
        assert code == 0, err
        assert busy.node_id[:8] in err and "snapshots not listed" in err, err
    finally:
        busy.stop()
    assert (tmp_path / "r.rec").exists()
    assert "key_revocation" in custody_kinds(node)
    assert good in listed(node)
