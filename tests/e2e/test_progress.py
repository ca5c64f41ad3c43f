"""Long work shows progress (bytes, rate, ETA) on a terminal and stays quiet when piped."""

from __future__ import annotations

import os
import pty
import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import KeyFile
from tests.netfaults import TcpLink
from tests.nodeproc import NodeProcess, entry_point, run_cli

pytestmark = pytest.mark.timeout(90)

ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")


def run_on_terminal(*args: str | os.PathLike[str]) -> tuple[int, str]:
    """Run the CLI with stdout and stderr on a pseudo-terminal; (exit code, what it drew,
    escape sequences removed)."""
    main, side = pty.openpty()
    env = dict(os.environ, TERM="xterm", COLUMNS="120", LINES="40")
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen(
        [entry_point("samizdat"), *map(os.fspath, args)],
        stdin=subprocess.DEVNULL,
        stdout=side,
        stderr=side,
        env=env,
    )
    os.close(side)
    drawn = bytearray()
    while True:
        try:
            data = os.read(main, 1 << 16)
        except OSError:  # EIO: the terminal's other side is closed
            break
        if not data:
            break
        drawn += data
    os.close(main)
    code = proc.wait(60)
    return code, ANSI.sub(b"", bytes(drawn)).decode("utf-8", "replace")


def slow_tree(root: Path) -> Path:
    root.mkdir()
    for i in range(3):
        (root / f"video-{i}.bin").write_bytes(os.urandom(8 << 20))
    return root


def test_push_and_restore_draw_bytes_rate_and_eta_on_a_terminal(
    node: NodeProcess, archive_key: KeyFile, tmp_path: Path
) -> None:
    src = slow_tree(tmp_path / "src")
    link = TcpLink(node.port, rate=8e6)  # ~3 s of transfer: the bar redraws several times
    try:
        address = f"{node.node_id}@127.0.0.1:{link.port}"
        code, drawn = run_on_terminal("push", "--key", archive_key.path, "--node", address, src)
        assert code == 0, drawn
        # e.g. "push ━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━  8.4/25.2 MB 8.1 MB/s 0:00:03"
        assert re.search(r"push .*\d+(\.\d+)?/\d+(\.\d+)? MB .*MB/s.*\d:\d\d:\d\d", drawn), drawn
        code, drawn = run_on_terminal(
            "restore", "--key", archive_key.path, "--node", address, tmp_path / "dest"
        )
        assert code == 0, drawn
        assert re.search(r"restore .*\d+(\.\d+)?/\d+(\.\d+)? MB .*MB/s.*\d:\d\d:\d\d", drawn), drawn
    finally:
        link.close()


def test_piped_output_has_no_progress(
    node: NodeProcess, archive_key: KeyFile, tmp_path: Path
) -> None:
    src = slow_tree(tmp_path / "src")
    code, out, err = run_cli("push", "--key", archive_key.path, "--node", node.address, src)
    assert code == 0, err
    assert "\x1b" not in out + err and "MB/s" not in err, err
    assert out.startswith("snapshot ")
