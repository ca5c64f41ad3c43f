"""Trees whose paths try to escape the restore directory: `../`, absolute paths, and symlink
tricks. Built with the core API, signed with the real archive key (the key holder is not the
attacker here: a compromised custodian machine or a bug), uploaded as a writer. Restore must
refuse with a clear error and write nothing outside DEST."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import KeyFile
from tests.crafted import craft_snapshot, dir_entry, file_entry, symlink_entry, upload
from tests.nodeproc import NodeProcess, run_cli

pytestmark = pytest.mark.timeout(90)

PAYLOAD = b"attacker controlled bytes\n"


def snapshot_of(outside: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(outside)): p.read_bytes() if p.is_file() else b"<dir>"
        for p in sorted(outside.rglob("*"))
    }


def cases(outside: Path) -> dict[str, list]:  # type: ignore[type-arg]
    abs_target = os.fsencode(outside / "pwned.txt")
    return {
        "dotdot": [
            dir_entry(b"a"),
            file_entry(b"a/ok.txt", b"fine"),
            file_entry(b"../outside/pwned.txt", PAYLOAD),
        ],
        "dotdot-inside": [dir_entry(b"a"), file_entry(b"a/../../outside/pwned.txt", PAYLOAD)],
        "absolute": [file_entry(b"ok.txt", b"fine"), file_entry(abs_target, PAYLOAD)],
        "absolute-dir": [dir_entry(os.fsencode(outside)), file_entry(abs_target, PAYLOAD)],
        "symlink-then-write-through": [
            symlink_entry(b"link", os.fsencode(outside)),
            file_entry(b"link/pwned.txt", PAYLOAD),
        ],
        "relative-symlink-then-write-through": [
            symlink_entry(b"up", b"../outside"),
            file_entry(b"up/pwned.txt", PAYLOAD),
        ],
        "symlink-overwrites-sentinel": [
            symlink_entry(b"s", os.fsencode(outside / "sentinel.txt")),
            file_entry(b"s", PAYLOAD),
        ],  # must replace the link, not write through it
        "symlink-then-file-not-adjacent": [
            symlink_entry(b"s", os.fsencode(outside / "sentinel.txt")),
            file_entry(b"t", b"fine"),
            file_entry(b"s", PAYLOAD),
        ],  # review R24: one of the two was silently lost, exit 0
        "child-before-parent": [file_entry(b"a/x", b"fine"), dir_entry(b"a")],
        "symlink-dir-then-nested-dir": [
            symlink_entry(b"d", os.fsencode(outside)),
            dir_entry(b"d/sub"),
            file_entry(b"d/sub/pwned.txt", PAYLOAD),
        ],
        "empty-component": [file_entry(b"a//pwned.txt", PAYLOAD)],
        "dot": [file_entry(b".", PAYLOAD)],
    }


def _unsafe(path: str):  # type: ignore[no-untyped-def]
    return lambda outside: f"refusing unsafe path in tree: '{path.format(o=outside)}'"


EXPECTED = {
    "dotdot": _unsafe("../outside/pwned.txt"),
    "dotdot-inside": _unsafe("a/../../outside/pwned.txt"),
    "absolute": _unsafe("{o}/pwned.txt"),
    "absolute-dir": _unsafe("{o}"),
    "symlink-then-write-through": lambda o: "'link/pwned.txt'",
    "relative-symlink-then-write-through": lambda o: "'up/pwned.txt'",
    # Entries out of push's order (docs/format.md), e.g. two for one path: a malformed tree,
    # refused as a whole.
    "symlink-overwrites-sentinel": lambda o: "'s' out of order or twice",
    "symlink-then-file-not-adjacent": lambda o: "'s' out of order or twice",
    "child-before-parent": lambda o: "'a' out of order or twice",
    "symlink-dir-then-nested-dir": lambda o: "'d/sub'",
    "empty-component": _unsafe("a//pwned.txt"),
    "dot": _unsafe("."),
}
SYMLINK_CASES = {
    "symlink-then-write-through",
    "relative-symlink-then-write-through",
    "symlink-dir-then-nested-dir",
}

CASE_NAMES = [
    "dotdot",
    "dotdot-inside",
    "absolute",
    "absolute-dir",
    "symlink-then-write-through",
    "relative-symlink-then-write-through",
    "symlink-overwrites-sentinel",
    "symlink-then-file-not-adjacent",
    "child-before-parent",
    "symlink-dir-then-nested-dir",
    "empty-component",
    "dot",
]


@pytest.mark.parametrize("case", CASE_NAMES)
def test_restore_never_writes_outside_dest(
    node: NodeProcess, archive_key: KeyFile, tmp_path: Path, outside: Path, case: str
) -> None:
    crafted = craft_snapshot(archive_key.key, cases(outside)[case])
    client = node.client(archive_key.key)
    try:
        upload(client, crafted)
    finally:
        client.close()
    before = snapshot_of(outside)
    dest = tmp_path / "dest"
    code, out, err = run_cli("restore", "--key", archive_key.path, "--node", node.address, dest)
    assert snapshot_of(outside) == before, f"{case}: restore wrote outside DEST"
    assert not (tmp_path / "pwned.txt").exists()
    assert not Path("/pwned.txt").exists()
    assert code == 1, (case, code, out, err)
    assert "Traceback" not in err
    assert EXPECTED[case](outside) in err, err
    if case in SYMLINK_CASES:
        assert "symlink" in err, err
    # nothing of the attacker's payload anywhere under DEST either
    for p in dest.rglob("*") if dest.exists() else []:
        if p.is_file() and not p.is_symlink():
            assert p.read_bytes() != PAYLOAD, f"{case}: payload written to {p}"


def test_verify_and_ls_refuse_unsafe_trees(
    node: NodeProcess, archive_key: KeyFile, outside: Path
) -> None:
    crafted = craft_snapshot(archive_key.key, cases(outside)["dotdot"])
    client = node.client(archive_key.key)
    try:
        upload(client, crafted)
    finally:
        client.close()
    for command in (["verify"], ["ls", "latest"]):
        code, _, err = run_cli(
            command[0], "--key", archive_key.path, "--node", node.address, *command[1:]
        )
        assert code == 1, (command, err)
        assert "refusing unsafe path in tree: '../outside/pwned.txt'" in err, err


def test_symlink_already_in_dest_is_not_followed(
    node: NodeProcess, archive_key: KeyFile, tmp_path: Path, outside: Path
) -> None:
    """DEST already holds a symlink (planted, or left by an earlier restore) where the tree
    has a directory: the restore must not write through it."""
    crafted = craft_snapshot(
        archive_key.key, [dir_entry(b"pre"), file_entry(b"pre/pwned.txt", PAYLOAD)]
    )
    client = node.client(archive_key.key)
    try:
        upload(client, crafted)
    finally:
        client.close()
    dest = tmp_path / "dest"
    dest.mkdir()
    os.symlink(outside, dest / "pre")
    before = snapshot_of(outside)
    for extra in ([], ["--overwrite"]):
        code, _, err = run_cli(
            "restore", "--key", archive_key.path, "--node", node.address, *extra, dest
        )
        assert snapshot_of(outside) == before, "restore wrote through a symlink in DEST"
        assert code in (1, 2) and "Traceback" not in err, err
        assert "'pre" in err, err
    assert (dest / "pre").is_symlink()
