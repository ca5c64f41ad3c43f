"""A node whose store was written before pack files (store format 1) upgrades in place: it
starts, serves every old chunk, stores new ones in packs, and a copy of its directory still
restores offline (`restore --store`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import KeyFile
from tests.e2e.test_single_node import assert_restores
from tests.legacy import downgrade_store_to_format1
from tests.nodeproc import NodeProcess, run_cli
from tests.trees import assert_same_tree

pytestmark = pytest.mark.timeout(120)


def test_format1_store_is_served_and_restored_after_upgrade(
    node: NodeProcess, archive_key: KeyFile, sample_tree: Path, tmp_path: Path
) -> None:
    code, _, err = run_cli("push", "--key", archive_key.path, "--node", node.address, sample_tree)
    assert code == 0, err
    node.stop()
    assert downgrade_store_to_format1(node.data_dir) > 0

    copy = tmp_path / "carried"  # an old store carried on a disk, restored offline
    code, _, err = run_cli("restore", "--key", archive_key.path, "--store", node.directory, copy)
    assert code == 0, err
    assert_same_tree(sample_tree, copy)

    node.start()
    (snap,) = node.status().snapshots
    assert snap.chunks_held == snap.chunks_total
    (sample_tree / "added after the upgrade.txt").write_text("new\n" * 1000)
    code, _, err = run_cli("push", "--key", archive_key.path, "--node", node.address, sample_tree)
    assert code == 0, err
    assert (node.data_dir / "packs").is_dir()
    assert_restores(archive_key, node, sample_tree, tmp_path / "dest")
    code, _, err = run_cli("verify", "--key", archive_key.path, "--node", node.address)
    assert code == 0, err
