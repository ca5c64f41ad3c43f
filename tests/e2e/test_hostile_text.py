"""Text an attacker chooses never acts on the terminal: file names inside a crafted snapshot
(`ls`, the damage report of `restore` and `verify`, a refused path) and what a lying node
says about itself (`status`) are shown with control characters and bidi overrides escaped,
rich markup shown literally; with --json the exact text comes back (JSON-escaped).

Checked on the raw bytes the real CLI writes on stdout and stderr."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from samizdat.core.errors import ExitCode
from tests.conftest import KeyFile
from tests.crafted import craft_snapshot, dir_entry, file_entry, upload
from tests.damage import flip_on_disk
from tests.nodeproc import NodeProcess, _env, entry_point

pytestmark = pytest.mark.timeout(120)

TITLE = "\x1b]0;pwned\x07title"  # sets the terminal window's title
MARKUP = "[bold red]red[link=x.invalid]click"  # no "/": a file name (closing tags have one)
BIDI = "evil\u202egnp.exe"  # shows as "evilexe.png"
C1 = "csi\u009b31mred"  # a C1 CSI: colours on terminals that take 8-bit controls
FORGED = "x\nrestored snapshot ok: 0 damaged"  # a line of its own, if printed raw
NAMES = [TITLE, MARKUP, BIDI, C1, FORGED]
CONTENT = {name: os.urandom(3000) + name.encode() for name in NAMES}
IN_TREE_ORDER = sorted(NAMES, key=str.encode)  # push's order: restore refuses any other
# On the raw bytes: ESC, BEL, CR and other C0 controls (newline ends our lines), DEL, C1 in
# UTF-8 (C2 80-9F), bidi overrides and isolates (E2 80 AA-AE, E2 81 A6-A9).
UNSAFE = re.compile(
    rb"[\x00-\x09\x0b-\x1f\x7f]|\xc2[\x80-\x9f]|\xe2\x80[\xaa-\xae]|\xe2\x81[\xa6-\xa9]"
)


def run_raw(*args: str | Path) -> tuple[int, bytes, bytes]:
    """The real `samizdat`, its stdout and stderr as the bytes a terminal would get."""
    proc = subprocess.run(
        [entry_point("samizdat"), *map(os.fspath, args)],
        env=_env(),
        capture_output=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    return proc.returncode, proc.stdout, proc.stderr


def assert_inert(raw: bytes, *expected: str) -> None:
    """Nothing in `raw` a terminal would act on; each of `expected` shown as text."""
    assert not UNSAFE.search(raw), raw
    text = raw.decode()
    for shown in expected:
        assert shown in text, (shown, text)


SHOWN = [r"\x1b]0;pwned\x07title", MARKUP, r"evil\u202egnp.exe", r"csi\x9b31mred"]
SHOWN_FORGED = r"x\nrestored snapshot ok: 0 damaged"


@pytest.fixture
def crafted(node: NodeProcess, archive_key: KeyFile) -> list[bytes]:
    """A snapshot of files named by an attacker, uploaded to `node`; the stored blob of each
    file's only chunk."""
    entries = [dir_entry(b"d")] + [
        file_entry(b"d/" + name.encode(), CONTENT[name]) for name in IN_TREE_ORDER
    ]
    snap = craft_snapshot(archive_key.key, entries)
    client = node.client(archive_key.key)
    try:
        upload(client, snap)
    finally:
        client.close()
    blobs = dict(snap.blobs)
    return [blobs[bytes(entry.chunks[0].id)] for entry, _ in entries[1:]]


def test_ls_shows_hostile_file_names_as_text(
    node: NodeProcess, archive_key: KeyFile, crafted: list[bytes]
) -> None:
    code, out, err = run_raw("ls", "--key", archive_key.path, "--node", node.address, "latest")
    assert code == 0, err
    assert_inert(out + err, *SHOWN, SHOWN_FORGED)
    assert out.count(b"\n") == len(NAMES) + 1  # the directory and one line per file

    code, out, err = run_raw(
        "ls", "--key", archive_key.path, "--node", node.address, "latest", "--json"
    )
    assert code == 0, err
    assert_inert(out + err)
    listed = [json.loads(line)["path"] for line in out.splitlines()]
    assert listed == ["d"] + ["d/" + name for name in IN_TREE_ORDER]  # the exact names


def test_restore_damage_report_shows_hostile_names_as_text(
    node: NodeProcess, archive_key: KeyFile, crafted: list[bytes], tmp_path: Path
) -> None:
    node.stop()
    for blob in crafted:  # every file's only chunk damaged on disk
        flip_on_disk(node.data_dir, blob[100:132])
    for verb in ("restore", "verify"):
        args = ["--key", archive_key.path, "--store", node.data_dir]
        dest = [tmp_path / "restored"] if verb == "restore" else []
        salvage = ["--salvage-partial"] if dest else []
        code, out, err = run_raw(verb, *args, *salvage, *dest)
        assert code == ExitCode.INCOMPLETE, err
        assert_inert(out + err, *SHOWN, SHOWN_FORGED)
        lines = err.decode().splitlines()  # errors, each damaged file on a line of its own
        assert all(line.startswith(("error: ", "  d/")) for line in lines), lines
        assert sum(line.startswith("  d/") for line in lines) == len(NAMES), lines

        code, out, err = run_raw(verb, *args, "--json", *dest)
        assert code == ExitCode.INCOMPLETE, err
        assert_inert(out + err)
        damaged = {d["path"] for d in json.loads(out)["damaged"]}
        assert damaged == {"d/" + name for name in NAMES}


def test_refused_path_is_named_as_text(
    node: NodeProcess, archive_key: KeyFile, tmp_path: Path
) -> None:
    evil = (TITLE + "/../" + MARKUP + "/../../" + BIDI).encode()
    snap = craft_snapshot(archive_key.key, [file_entry(evil, b"x")])
    client = node.client(archive_key.key)
    try:
        upload(client, snap)
    finally:
        client.close()
    args = ["restore", "--key", archive_key.path, "--node", node.address]
    code, out, err = run_raw(*args, tmp_path / "restored")
    assert code != 0 and b"refusing unsafe path" in err, err
    assert_inert(out + err, *SHOWN[:3])
    assert err.count(b"\n") == 1, err

    code, out, err = run_raw(*args, "--json", tmp_path / "restored")
    assert_inert(out + err)
    assert "refusing unsafe path" in json.loads(err.splitlines()[-1])["message"]


def test_status_shows_what_a_lying_node_says_about_itself_as_text(
    node_factory, archive_key: KeyFile
) -> None:  # type: ignore[no-untyped-def]
    claimed = TITLE + MARKUP + BIDI
    liar = node_factory("liar", host=[archive_key.archive_id], jurisdiction=claimed)
    code, out, err = run_raw("status", "--node", liar.address)
    assert code in (0, 1), err
    # Rich wraps the long cell (at "[bold| red]"): both halves shown, the markup as text.
    assert_inert(out + err, r"\x1b]0;pwned\x07title", "red]red[link=x.invalid]click")

    code, out, err = run_raw("status", "--node", liar.address, "--json")
    assert_inert(out + err)
    (reported,) = json.loads(out)["nodes"]
    assert reported["jurisdiction"] == claimed
