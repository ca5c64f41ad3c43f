"""`--json` on every command of the real CLI against a real node: each output validated
against its schema in docs/ and checked for the right values; errors and warnings as JSON
lines on stderr; shell completion scripts for bash, zsh and fish."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.conftest import KeyFile
from tests.jsonschemas import json_lines, schema
from tests.nodeproc import NodeProcess, free_port, run_cli
from tests.trees import read_tree

pytestmark = pytest.mark.timeout(120)


def run_json(*args: str | os.PathLike[str], name: str) -> dict[str, Any]:
    """Run a command with --json that must succeed quietly and print one object."""
    code, out, err = run_cli(*args, "--json")
    assert code == 0, err
    assert err == "", err
    (doc,) = json_lines(out, name)
    return doc


def test_every_command_prints_json_valid_against_its_schema(
    node: NodeProcess, archive_key: KeyFile, sample_tree: Path, tmp_path: Path
) -> None:
    new = run_json("key", "new", tmp_path / "fresh.key", name="key")
    shown = run_json("key", "show", tmp_path / "fresh.key", name="key")
    assert new == shown and new["passphrase"] is False
    assert run_json("key", "show", archive_key.path, name="key")["archive_id"] == (
        archive_key.archive_id
    )
    at = ("--key", archive_key.path, "--node", node.address)
    pushed = run_json("push", *at, sample_tree, name="push")
    tree = read_tree(sample_tree)
    assert pushed["archive"] == archive_key.archive_id and pushed["sequence"] == 1
    assert pushed["files"] == sum(1 for n in tree.values() if n.kind == "file")
    assert pushed["uploaded_chunks"] > 0

    listed = run_json("snapshots", "--node", node.address, name="snapshots")
    assert listed["unreachable"] == []
    (snap,) = listed["snapshots"]
    assert snap["snapshot"] == pushed["snapshot"]
    assert snap["chunks_held"] == snap["chunks_total"] > 0

    code, out, err = run_cli("ls", *at, "latest", "--json")
    assert code == 0 and err == "", err
    entries = json_lines(out, "ls")
    paths = {
        base64.b64decode(e["path_base64"]) if "path_base64" in e else e["path"].encode()
        for e in entries
    }
    assert paths == set(tree)  # exact bytes, non-UTF-8 names included
    assert any("path_base64" in e for e in entries)
    kinds = {"file": "file", "directory": "dir", "symlink": "symlink"}
    for e in entries:
        p = base64.b64decode(e["path_base64"]) if "path_base64" in e else e["path"].encode()
        assert kinds[e["type"]] == tree[p].kind
        if e["type"] == "symlink":
            assert e["target"].encode() == tree[p].content

    restored = run_json("restore", *at, tmp_path / "restored", name="restore")
    assert restored["verb"] == "restored" and restored["snapshot"] == pushed["snapshot"]
    assert restored["files"] == pushed["files"]
    verified = run_json("verify", *at, name="restore")
    assert verified["verb"] == "verified" and verified["bytes"] == restored["bytes"]
    for summary in (restored, verified):
        assert summary["complete"] is True and summary["damaged"] == []
        jsonschema.validate(summary["damaged"], schema("damage"))

    code, out, err = run_cli("status", "--node", node.address, "--json", "--replicas", "1")
    (status,) = json_lines(out, "status")  # degraded (exit 1) until scrub has verified it
    assert status["exit_code"] == code and code in (0, 1) and err == "", err


def test_errors_and_warnings_are_json_lines_on_stderr(
    node: NodeProcess, archive_key: KeyFile, sample_tree: Path
) -> None:
    port = free_port()
    nobody = f"{node.node_id}@127.0.0.1:{port}"
    # Nothing reachable: a warning per node tried, then the error; nothing on stdout.
    key = ("--key", archive_key.path)
    code, out, err = run_cli("push", *key, "--node", nobody, sample_tree, "--json")
    assert code == 2 and out == ""
    *warnings, last = json_lines(err, "error")
    assert [w["type"] for w in warnings] == ["warning"]
    assert last["type"] == "error" and last["exit_code"] == 2 and last["kind"] == "PeerUnavailable"
    # One of two nodes unreachable: listed, and warned about, and the command succeeds.
    code, out, err = run_cli("snapshots", "--node", nobody, "--node", node.address, "--json")
    assert code == 0, err
    (listed,) = json_lines(out, "snapshots")
    (unreachable,) = listed["unreachable"]
    assert unreachable.endswith(f":{port}") and len(listed["snapshots"]) == 0
    (warning,) = json_lines(err, "error")
    assert warning["type"] == "warning"
    # Usage errors, before and after --json on the command line, and unknown options.
    for args in (
        ("push", "--json", "--node", node.address, sample_tree),  # no --key
        ("ls", "--bogus", "--json"),
        ("restore", "--json", "--key", archive_key.path, "dest"),  # no source
    ):
        code, out, err = run_cli(*args)
        assert code == 2 and out == "", (args, out)
        (failure,) = json_lines(err, "error")
        assert failure["type"] == "error" and failure["exit_code"] == 2, failure
    # Integrity failures exit 1 with their kind.
    code, out, err = run_cli(
        "verify", *key, "--node", node.address, "--snapshot", "ff" * 8, "--json"
    )
    assert code == 1 and out == ""
    (failure,) = json_lines(err, "error")
    assert failure["kind"] == "SnapshotNotFound" and failure["exit_code"] == 1


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_shell_completion(shell: str) -> None:
    code, out, err = run_cli(env={"_SAMIZDAT_COMPLETE": f"{shell}_source"})
    assert code == 0 and "_SAMIZDAT_COMPLETE" in out, err
    code, out, err = run_cli(
        program="samizdat-node", env={"_SAMIZDAT_NODE_COMPLETE": f"{shell}_source"}
    )
    assert code == 0 and "_SAMIZDAT_NODE_COMPLETE" in out, err


def test_completion_completes_commands() -> None:
    env = {"_SAMIZDAT_COMPLETE": "bash_complete", "COMP_WORDS": "samizdat ke", "COMP_CWORD": "1"}
    code, out, _ = run_cli(env=env)
    assert code == 0 and out.split() == ["plain,key"]
