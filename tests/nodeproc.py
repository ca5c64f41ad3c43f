"""Real node processes and real CLI runs for end-to-end and fault tests.

`NodeProcess` drives the `samizdat-node` entry point exactly as an operator would (init, host,
peer add, serve) on a free loopback port, with TLS; `run_cli` runs the `samizdat` entry point
as a subprocess. Both are plain helpers (no pytest imports) so that multi-node tests, bench
scripts and fixtures can share them.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

VENV_BIN = Path(sys.executable).parent
START_TIMEOUT = 20.0
STOP_TIMEOUT = 15.0
CLI_TIMEOUT = 120.0


def entry_point(name: str, bin_dir: Path | None = None) -> str:
    """Path of an installed console script: in `bin_dir` if given (another installation),
    else next to this interpreter, else on PATH."""
    if bin_dir is not None:
        return str(bin_dir / name)
    candidate = VENV_BIN / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"entry point {name!r} is not installed (pip install -e .)")
    return found


_handed_out: set[int] = set()


def _ephemeral_low() -> int:
    """The lowest port the kernel gives to outgoing connections and to bind(port 0)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A loopback TCP port that is free now, for a listener that binds it a moment later.

    Chosen below the kernel's ephemeral range, so that no outgoing connection (of a node, the
    CLI or a test) can take it in between, and never the same twice in this process, so that
    two nodes made before either starts cannot be given one port. Falls back to a port from
    bind(0) where the ephemeral range leaves no room below it."""
    low = _ephemeral_low()
    candidates = list(range(10_000, low)) if low > 12_000 else []
    random.shuffle(candidates)
    for port in [*candidates[:200], 0]:
        if port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            chosen = int(s.getsockname()[1])
        if chosen not in _handed_out:
            _handed_out.add(chosen)
            return chosen
    raise RuntimeError("no free loopback port")


def _env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.pop("SAMIZDAT_PASSPHRASE", None)
    if extra:
        env.update(extra)
    return env


def run_cli(
    *args: str | os.PathLike[str],
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    timeout: float = CLI_TIMEOUT,
    program: str = "samizdat",
    bin_dir: Path | None = None,
) -> tuple[int, str, str]:
    """Run the real `samizdat` CLI (from `bin_dir` if given); return (exit code, stdout,
    stderr). Never raises on a non-zero exit (tests assert on it)."""
    proc = subprocess.run(
        [entry_point(program, bin_dir), *map(os.fspath, args)],
        env=_env(env),
        cwd=cwd,
        capture_output=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    return (
        proc.returncode,
        proc.stdout.decode("utf-8", "replace"),
        proc.stderr.decode("utf-8", "replace"),
    )


# Runs argv[2:] as a grandchild of the test and writes its peak RSS (ru_maxrss, KiB) to
# argv[1]: Linux carries a parent's high-water mark into a child's ru_maxrss across fork+exec,
# so the CLI must be forked from this small fresh interpreter, not from the test process.
_PEAK_RSS_WRAPPER = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as f:
    f.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_cli_peak_rss(
    *args: str | os.PathLike[str], rss_file: Path, timeout: float = CLI_TIMEOUT
) -> tuple[int, str, str, int]:
    """`run_cli`, and the CLI process's peak RSS in bytes (its kernel high-water mark, written
    to `rss_file` by a wrapper interpreter)."""
    code, out, err = run_cli(
        "-c",
        _PEAK_RSS_WRAPPER,
        rss_file,
        entry_point("samizdat"),
        *args,
        timeout=timeout,
        program=Path(sys.executable).name,
        bin_dir=VENV_BIN,
    )
    return code, out, err, int(rss_file.read_text()) * 1024


def run_node_cli(
    *args: str | os.PathLike[str], timeout: float = 60.0, bin_dir: Path | None = None
) -> tuple[int, str, str]:
    """Run the real `samizdat-node` CLI; return (exit code, stdout, stderr)."""
    return run_cli(*args, timeout=timeout, program="samizdat-node", bin_dir=bin_dir)


def spawn_cli(
    *args: str | os.PathLike[str],
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    wrapper: Sequence[str] = (),
) -> subprocess.Popen[bytes]:
    """Start the real `samizdat` CLI without waiting (for kill-midway tests), optionally
    under a `wrapper` command (e.g. setpriv)."""
    return subprocess.Popen(
        [*wrapper, entry_point("samizdat"), *map(os.fspath, args)],
        env=_env(env),
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )


class NodeError(RuntimeError):
    pass


class NodeProcess:
    """One `samizdat-node` in its own directory, served as a real subprocess.

    >>> node = NodeProcess(tmp_path / "n1").init()
    >>> node.host(archive_id); node.start()
    >>> node.address   # 'NODE_ID@127.0.0.1:PORT'
    """

    log_level = "debug"  # what `serve --log-level` gets (the bench's subclass logs less)

    def __init__(
        self,
        directory: Path,
        *,
        port: int | None = None,
        name: str | None = None,
        jurisdiction: str = "",
        bin_dir: Path | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.bin_dir = bin_dir  # another installation's scripts (default: this venv's)
        self.port = port or free_port()
        self.name = name or self.directory.name
        self.jurisdiction = jurisdiction
        self.node_id = ""
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.directory.parent / f"{self.directory.name}.log"
        self.ready_file = self.directory.parent / f"{self.directory.name}.ready"
        self._log_handle: object | None = None

    # ------------------------------------------------------------ configuration

    def _cli(self, *args: str) -> str:
        code, out, err = run_node_cli(*args, bin_dir=self.bin_dir)
        if code != 0:
            raise NodeError(f"samizdat-node {' '.join(args)} exited {code}: {err.strip()}")
        return out

    def init(self) -> NodeProcess:
        args = [
            "init",
            str(self.directory),
            "--listen",
            f"127.0.0.1:{self.port}",
            "--name",
            self.name,
        ]
        if self.jurisdiction:
            args += ["--jurisdiction", self.jurisdiction]
        self.node_id = self._cli(*args).strip().splitlines()[-1]
        return self

    def host(self, archive_id: str) -> None:
        self._cli("host", str(self.directory), archive_id)

    def peer_add(
        self, other: NodeProcess | str, address: str | None = None, jurisdiction: str = ""
    ) -> None:
        """Add a peer: another NodeProcess, or a node id plus HOST:PORT."""
        if isinstance(other, NodeProcess):
            node_id, hostport = other.node_id, f"127.0.0.1:{other.port}"
            jurisdiction = jurisdiction or other.jurisdiction
        else:
            if address is None:
                raise ValueError("peer_add(node_id, address) needs an address")
            node_id, hostport = other, address
        args = ["peer", "add", str(self.directory), node_id, hostport]
        if jurisdiction:
            args += ["--jurisdiction", jurisdiction]
        self._cli(*args)

    def peer_revoke(self, other: NodeProcess | str) -> None:
        node_id = other.node_id if isinstance(other, NodeProcess) else other
        self._cli("peer", "revoke", str(self.directory), node_id)

    # ----------------------------------------------------------------- process

    @property
    def address(self) -> str:
        return f"{self.node_id}@127.0.0.1:{self.port}"

    @property
    def hostport(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = START_TIMEOUT) -> NodeProcess:
        """Spawn `samizdat-node serve DIR --ready-file F` and wait until it serves."""
        if self.running:
            raise NodeError(f"node {self.name} is already running")
        self.ready_file.unlink(missing_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115  (closed in _reap)
        log.write(f"---- start {time.strftime('%H:%M:%S')} ----\n".encode())
        log.flush()
        self._log_handle = log
        self.proc = subprocess.Popen(
            [
                entry_point("samizdat-node", self.bin_dir),
                "serve",
                str(self.directory),
                "--log-level",
                self.log_level,
                "--ready-file",
                str(self.ready_file),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=_env(),
            cwd=self.directory.parent,  # a node depends on no working directory
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                self._reap()
                raise NodeError(f"node {self.name} exited {code} during start:\n{self.logs()}")
            text = self.ready_file.read_text() if self.ready_file.exists() else ""
            if text.strip().isdigit():
                bound = int(text.strip())
                if bound != self.port:
                    raise NodeError(f"node {self.name} bound {bound}, expected {self.port}")
                return self
            time.sleep(0.05)
        self.kill()
        raise NodeError(f"node {self.name} not ready after {timeout}s:\n{self.logs()}")

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM and wait; return the exit code (SIGKILL if it does not stop in time)."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.send_signal(signal.SIGUSR1)  # every thread's stack into the log
                time.sleep(1.0)
                self.proc.kill()
                self.proc.wait(timeout)
                self._reap()
                raise NodeError(
                    f"node {self.name} ignored SIGTERM for {timeout}s:\n{self.logs()}"
                ) from None
        code = self.proc.returncode
        self._reap()
        return code

    def rss(self) -> int:
        """The running node's resident set size in bytes (VmRSS)."""
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")

    def kill(self) -> None:
        """SIGKILL (a crash or a seizure): no cleanup runs in the node."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(STOP_TIMEOUT)
        self._reap()

    def restart(self, timeout: float = START_TIMEOUT) -> NodeProcess:
        self.stop()
        return self.start(timeout)

    def _reap(self) -> None:
        handle = self._log_handle
        if handle is not None:
            handle.close()  # type: ignore[attr-defined]
            self._log_handle = None
        self.proc = None

    def logs(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"

    def status(self, key=None):  # type: ignore[no-untyped-def]
        """GetStatus over TLS: a stranger's without `key`, a member's with an archive key
        (peers' addresses and error texts)."""
        from samizdat.rpc.address import NodeAddress
        from samizdat.rpc.remote import NodeClient

        client = NodeClient(NodeAddress.parse(self.address), key)
        try:
            return client.status(timeout=10)
        finally:
            client.close()

    def client(self, key=None):  # type: ignore[no-untyped-def]
        """A NodeClient for this node (the caller closes it)."""
        from samizdat.rpc.address import NodeAddress
        from samizdat.rpc.remote import NodeClient

        return NodeClient(NodeAddress.parse(self.address), key)

    def __repr__(self) -> str:
        return f"NodeProcess({self.name}, port={self.port}, running={self.running})"


def dump_logs(nodes: Sequence[NodeProcess], stream=sys.stderr) -> None:  # type: ignore[no-untyped-def]
    for node in nodes:
        print(f"\n===== log of node {node.name} ({node.log_path}) =====", file=stream)
        print(node.logs()[-20000:], file=stream)
