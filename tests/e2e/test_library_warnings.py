"""What the client's modules log (a special file skipped by push, a source dropped by
restore) reaches stderr the way every other message does: cleaned on a terminal (a file
name's escapes shown as text), and as JSON warning lines under --json (docs/json.md: stderr
holds nothing else). Python's fallback handler printed them raw, as plain lines."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import KeyFile
from tests.nodeproc import NodeProcess, _env, entry_point

pytestmark = pytest.mark.timeout(120)

NAME = "\x1b]0;pwned\x07[red]fifo\u202e"


def push(*args: str | Path) -> tuple[int, bytes, bytes]:
    proc = subprocess.run(
        [entry_point("samizdat"), "push", *map(os.fspath, args)],
        env=_env(),
        capture_output=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    return proc.returncode, proc.stdout, proc.stderr


def test_a_skipped_special_file_is_named_cleanly_and_as_json(
    node: NodeProcess, archive_key: KeyFile, tmp_path: Path
) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "kept.txt").write_text("kept")
    os.mkfifo(source / NAME)
    args = ["--key", archive_key.path, "--node", node.address, source]

    code, out, err = push(*args)
    assert code == 0, err
    assert b"\x1b" not in err and b"\x07" not in err and "\u202e".encode() not in err, err
    assert r"warning: skipping special file \x1b]0;pwned\x07[red]fifo\u202e" in err.decode()

    code, out, err = push(*args, "--json")
    assert code == 0, err
    warnings = [json.loads(line) for line in err.decode().splitlines()]
    assert warnings == [{"type": "warning", "message": f"skipping special file {NAME}"}]
    assert json.loads(out)["files"] == 1
