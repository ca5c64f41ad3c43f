"""Ctrl-C at any moment of `samizdat` and `samizdat-node` (but `serve`): exit code 130, one
line `error: interrupted` on stderr (the JSON error line under --json), never a traceback;
what was interrupted leaves nothing a next run trips on.

Real processes and real SIGINTs, sent at moments chosen by conditions: while the commands'
modules load (an extension module of theirs is mapped in the process), while a command waits
(on a FIFO nobody writes), in the middle of a push (chunks have reached the node through a
slow link), inside a cleanup and inside a finalizer (the process signals itself there).

The interpreter's own start (site.py, ~10 ms before the entry point's first line) is out of
any entry point's reach: a SIGINT there ends Python as Python decides. The tests start at
the first moment the entry point can have acted.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import jsonschema
import pytest

from samizdat.core.errors import ExitCode
from tests.conftest import KeyFile
from tests.netfaults import TcpLink
from tests.nodeproc import NodeProcess, _env, entry_point, run_cli
from tests.trees import assert_same_tree

pytestmark = pytest.mark.timeout(180)

DOCS = Path(__file__).resolve().parents[2] / "docs"
TEXT_REPORT = b"error: interrupted\n"
# Extension modules the commands' imports map, roughly in import order: waiting for one
# means the entry point has already taken SIGINT over (none is loaded before it runs).
IMPORT_MARKERS = ("lib-dynload/", "cryptography", "zstandard", "cygrpc", "_upb", "rocksdict")


def wait_for(check: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(0.001)


def mapped(proc: subprocess.Popen[bytes], marker: str) -> bool:
    """Is a shared object whose path holds `marker` mapped in `proc`? (False once it ended.)"""
    try:
        return marker in Path(f"/proc/{proc.pid}/maps").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False


def spawn(program: str, *args: str | Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [entry_point(program), *map(os.fspath, args)],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )


def interrupt(proc: subprocess.Popen[bytes]) -> tuple[int, bytes, bytes]:
    assert proc.poll() is None, "the process ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    return proc.returncode, out, err


def assert_json_interrupted(err: bytes) -> None:
    schema = json.loads((DOCS / "error.schema.json").read_text())
    lines = err.decode().splitlines()
    assert lines, err
    for line in lines:
        jsonschema.validate(json.loads(line), schema)
    last = json.loads(lines[-1])
    assert (last["kind"], last["exit_code"]) == ("Interrupted", 130), last


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    """A named pipe nobody writes: opening it for reading waits for ever."""
    path = tmp_path / "records.txt"
    os.mkfifo(path)
    return path


def interrupt_when(
    program: str, args: list[str | Path], *conditions: Callable[[subprocess.Popen[bytes]], bool]
) -> tuple[int, bytes, bytes]:
    """Start `program`, wait until each of `conditions` holds in turn (or it ended), then
    send SIGINT; its exit code, stdout and stderr."""
    proc = spawn(program, *args)
    try:
        for condition in conditions:
            wait_for(lambda c=condition: c(proc) or proc.poll() is not None)  # type: ignore[misc]
        return interrupt(proc)
    finally:
        if proc.poll() is None:
            proc.kill()


def loaded(marker: str) -> Callable[[subprocess.Popen[bytes]], bool]:
    return lambda proc: mapped(proc, marker)


@pytest.mark.parametrize("marker", IMPORT_MARKERS)
def test_ctrl_c_while_the_commands_load_exits_130(fifo: Path, marker: str) -> None:
    for _ in range(3):
        args: list[str | Path] = ["key", "publish", fifo, "--node", "127.0.0.1:1"]
        outcome = interrupt_when("samizdat", args, loaded(marker))
        assert outcome == (ExitCode.INTERRUPTED, b"", TEXT_REPORT)


def test_ctrl_c_while_a_command_waits_exits_130_also_as_json(fifo: Path) -> None:
    for extra in ([], ["--json"]):
        args: list[str | Path] = ["key", "publish", fifo, "--node", "127.0.0.1:1", *extra]
        # Past the imports, opening the FIFO: waiting in the command itself.
        code, out, err = interrupt_when("samizdat", args, loaded("rocksdict"), opening_fifo)
        assert code == ExitCode.INTERRUPTED and out == b"", err
        if extra:
            assert_json_interrupted(err)
        else:
            assert err == TEXT_REPORT


def opening_fifo(proc: subprocess.Popen[bytes]) -> bool:
    """Is `proc` blocked opening a FIFO (the kernel's wait for a writer)? True once it ended,
    so that a wait on it ends too."""
    try:
        return Path(f"/proc/{proc.pid}/wchan").read_text() in ("wait_for_partner", "fifo_open")
    except (FileNotFoundError, ProcessLookupError):
        return True


@pytest.mark.parametrize("marker", ["lib-dynload/", "cryptography", "wait"])
def test_ctrl_c_of_a_node_command_exits_130(tmp_path: Path, marker: str) -> None:
    """`samizdat-node host` reading a node.toml that is a FIFO: interrupted while its
    modules load, and while it waits."""
    directory = tmp_path / "node"
    directory.mkdir()
    os.mkfifo(directory / "node.toml")
    args: list[str | Path] = ["host", directory, "00" * 32]
    waits = [loaded("lib-dynload/"), opening_fifo] if marker == "wait" else [loaded(marker)]
    assert interrupt_when("samizdat-node", args, *waits) == (
        ExitCode.INTERRUPTED,
        b"",
        TEXT_REPORT,
    )


def test_ctrl_c_mid_push_exits_130_and_the_next_push_completes(
    node: NodeProcess, archive_key: KeyFile, tmp_path: Path
) -> None:
    """Interrupted while its worker threads encode and upload (chunks have reached the node
    through a slow link): exit 130, no traceback, valid --json stderr; the caches it leaves
    let the next push complete, and the snapshot restores identical."""
    source = tmp_path / "src"
    source.mkdir()
    for i in range(8):
        (source / f"f{i}.bin").write_bytes(os.urandom(1 << 20))
    link = TcpLink(node.port, rate=256 * 1024)
    try:
        address = f"{node.node_id}@127.0.0.1:{link.port}"
        args = ["push", "--key", archive_key.path, "--node", address, source, "--json"]
        proc = spawn("samizdat", *args)
        try:
            wait_for(lambda: node.status().chunks_stored > 0 or proc.poll() is not None, 120)
            code, out, err = interrupt(proc)
        finally:
            if proc.poll() is None:
                proc.kill()
    finally:
        link.close()
    assert code == ExitCode.INTERRUPTED and out == b"", err
    assert b"Traceback" not in err
    assert_json_interrupted(err)

    code, out_text, err_text = run_cli(
        "push", "--key", archive_key.path, "--node", node.address, source, "--json"
    )
    assert code == 0, err_text
    snapshot = json.loads(out_text)["snapshot"]
    code, _, err_text = run_cli(
        "restore", "--key", archive_key.path, "--node", node.address,
        "--snapshot", snapshot, tmp_path / "restored",
    )  # fmt: skip
    assert code == 0, err_text
    assert_same_tree(source, tmp_path / "restored")


# ------------------------------------------- the mechanism, at moments the process picks


def run_script(body: str, *argv: str) -> tuple[int, str, str]:
    """Run `body` after the entry point's set-up (`interrupt.install`), with `interrupt`,
    `os` and `signal` imported; a Ctrl-C is `ctrl_c()` (a real SIGINT to itself)."""
    script = (
        "import os, signal, sys\n"
        "from samizdat.core import interrupt\n"
        "def ctrl_c():\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "    for _ in range(1000): pass  # the handler runs between two bytecodes\n"
        f"interrupt.install(json_errors={'--json' in argv})\n" + body
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, *argv],
        capture_output=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        env=_env(),
    )
    return proc.returncode, proc.stdout.decode(), proc.stderr.decode()


def test_the_first_ctrl_c_unwinds_the_command_and_exits_130() -> None:
    code, out, err = run_script(
        "def command():\n"
        "    with interrupt.unwinding():\n"
        "        try:\n"
        "            ctrl_c()\n"
        "            print('not reached')\n"
        "        finally:\n"
        "            print('cleaned up', flush=True)\n"
        "interrupt.run(command)\n"
    )
    assert (code, out, err) == (130, "cleaned up\n", "error: interrupted\n")


def test_a_second_ctrl_c_during_the_cleanup_exits_at_once() -> None:
    code, out, err = run_script(
        "def command():\n"
        "    with interrupt.unwinding():\n"
        "        try:\n"
        "            ctrl_c()\n"
        "        finally:\n"
        "            print('cleaning', flush=True)\n"
        "            ctrl_c()\n"
        "            print('not reached')\n"
        "interrupt.run(command)\n"
    )
    assert (code, out, err) == (130, "cleaning\n", "error: interrupted\n")


def test_ctrl_c_inside_a_finalizer_exits_130_without_a_traceback() -> None:
    """Python prints an exception raised in `__del__` ("Exception ignored in") and goes on:
    an interrupt landing there must end the process all the same."""
    code, out, err = run_script(
        "class Finalized:\n"
        "    def __del__(self):\n"
        "        ctrl_c()\n"
        "def command():\n"
        "    with interrupt.unwinding():\n"
        "        Finalized()\n"
        "        print('not reached')\n"
        "interrupt.run(command)\n"
    )
    assert (code, out, err) == (130, "", "error: interrupted\n")


def test_ctrl_c_after_the_command_ended_exits_130_after_its_output() -> None:
    """The interpreter's exit (atexit, joining threads) is skipped: a Ctrl-C there cannot
    hang on a worker thread nor print a traceback, and what was written stays written."""
    code, out, err = run_script(
        "import threading\n"
        "threading.Thread(target=threading.Event().wait).start()  # never ends\n"
        "def command():\n"
        "    sys.stdout.write('{\"result\": 1}\\n')\n"
        "    return 0\n"
        "sys.stdout.flush = lambda: ctrl_c()  # the Ctrl-C lands in the final flush\n"
        "interrupt.run(command)\n",
        "--json",
    )
    assert code == 130 and json.loads(out) == {"result": 1}, err
    assert_json_interrupted(err.encode())


def test_a_finished_command_exits_with_its_code_without_joining_threads() -> None:
    code, out, err = run_script(
        "import threading\n"
        "threading.Thread(target=threading.Event().wait).start()  # never ends\n"
        "interrupt.run(lambda: sys.exit(3))\n"
    )
    assert (code, out, err) == (3, "", "")
