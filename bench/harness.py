"""Bench harness: measured processes (wall time, CPU time, peak RSS) and measured nodes.

`run_measured` runs one command and returns its wall time, CPU time (user + system, from
wait4) and peak RSS (the largest single process of its tree, from a `Sampler` reading VmHWM
every 50 ms: Linux carries a parent's high-water mark into the child's ru_maxrss across
fork+exec, so ru_maxrss would lie). `BenchNode` is the tests' `NodeProcess` (tests/nodeproc.py:
init, host, peer add, serve on a free loopback port with TLS, stop) plus what a step measures on
a running node: its CPU time and peak RSS between `begin_step` and `end_step`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.nodeproc import NodeProcess  # noqa: E402

MiB = 1 << 20
GiB = 1 << 30


class BenchError(Exception):
    """A one-line, user-facing failure."""


def tool(name: str) -> str:
    """Path of an executable: the venv's bin (next to this Python) first, then PATH."""
    local = Path(sys.executable).parent / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if not found:
        raise BenchError(f"{name} not found (activate the venv: . .venv/bin/activate)")
    return found


def py_spy_record(out: Path) -> list[str]:
    """The py-spy command line that samples a process (append `--pid N` or `-- CMD`) into `out`."""
    return [tool("py-spy"), "record", "--format", "raw", "--rate", "100", "--threads",
            "--nonblocking", "-o", str(out)]  # fmt: skip


def read_hwm(pid: int) -> int:
    """VmHWM (peak RSS) of a live process in bytes, 0 if unreadable."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def reset_hwm(pid: int) -> bool:
    """Reset a process's VmHWM to its current RSS (Linux clear_refs, value 5)."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class Sampler(threading.Thread):
    """Samples RSS (and VmHWM) of process trees every `interval` seconds; keeps peaks."""

    def __init__(self, interval: float = 0.05) -> None:
        super().__init__(daemon=True, name="rss-sampler")
        self.interval = interval
        self.roots: dict[str, int] = {}
        self.peak: dict[str, int] = {}  # label -> peak of the largest single process
        self.peak_tree: dict[str, int] = {}  # label -> peak of the tree's summed RSS
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def watch(self, label: str, pid: int) -> None:
        with self._lock:
            self.roots[label] = pid
            self.peak[label] = 0
            self.peak_tree[label] = 0

    def unwatch(self, label: str) -> tuple[int, int]:
        with self._lock:
            self.roots.pop(label, None)
            return self.peak.pop(label, 0), self.peak_tree.pop(label, 0)

    def sample(self) -> None:
        with self._lock:
            roots = dict(self.roots)
        for label, pid in roots.items():
            try:
                proc = psutil.Process(pid)
                procs = [proc, *proc.children(recursive=True)]
            except psutil.Error:
                continue
            total = biggest = 0
            for p in procs:
                try:
                    rss = p.memory_info().rss
                except psutil.Error:
                    continue
                total += rss
                biggest = max(biggest, rss, read_hwm(p.pid))
            with self._lock:
                if label in self.peak:
                    self.peak[label] = max(self.peak[label], biggest)
                    self.peak_tree[label] = max(self.peak_tree[label], total)

    def run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def stop(self) -> None:
        self._stop.set()


@dataclass
class Run:
    """One measured subprocess."""

    cmd: list[str]
    rc: int
    seconds: float
    cpu_seconds: float
    peak_rss: int  # bytes, largest single process of the tree
    stdout: str
    stderr: str


def short_cmd(cmd: list[str], words: int = 4) -> str:
    """The first words of a command line, the program by its base name (for messages)."""
    return " ".join(Path(c).name if i == 0 else c for i, c in enumerate(cmd[:words]))


def run_measured(
    cmd: list[str],
    sampler: Sampler,
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 7200,
    check: bool = True,
    label: str = "cli",
) -> Run:
    """Run `cmd`, returning wall time, CPU time and peak RSS (wait4 + sampler)."""
    out_f = tempfile.TemporaryFile()  # noqa: SIM115
    err_f = tempfile.TemporaryFile()  # noqa: SIM115
    t0 = time.perf_counter()
    try:
        proc = subprocess.Popen(
            cmd, cwd=cwd, env=env, stdout=out_f, stderr=err_f, stdin=subprocess.DEVNULL
        )
    except OSError as e:
        raise BenchError(f"cannot run {cmd[0]}: {e}") from None
    sampler.watch(label, proc.pid)
    deadline = t0 + timeout
    rusage = None
    try:
        while True:
            pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                proc.returncode = os.waitstatus_to_exitcode(status)
                break
            if time.perf_counter() > deadline:
                proc.kill()
                raise BenchError(f"{' '.join(cmd[:3])} timed out after {timeout:.0f}s")
            time.sleep(0.01)
    except BaseException:
        if proc.returncode is None:
            proc.kill()
            with contextlib.suppress(ChildProcessError):
                os.wait4(proc.pid, 0)
        raise
    seconds = time.perf_counter() - t0
    peak, _tree = sampler.unwatch(label)
    out_f.seek(0)
    err_f.seek(0)
    stdout = out_f.read().decode(errors="replace")
    stderr = err_f.read().decode(errors="replace")
    out_f.close()
    err_f.close()
    r = Run(cmd, proc.returncode, seconds, rusage.ru_utime + rusage.ru_stime, peak, stdout, stderr)
    if check and r.rc != 0:
        tail = (stderr.strip() or stdout.strip()).splitlines()[-5:]
        raise BenchError(
            f"{short_cmd(cmd)} ... failed with exit code {r.rc}:\n    " + "\n    ".join(tail)
        )
    return r


def simple(
    cmd: list[str],
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> str:
    """Run a short helper command; return stdout; raise BenchError with its stderr."""
    try:
        p = subprocess.run(
            cmd,
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise BenchError(f"{' '.join(cmd[:3])}: {e}") from None
    if p.returncode != 0:
        raise BenchError(
            f"{short_cmd(cmd)} failed ({p.returncode}): {(p.stderr or p.stdout).strip()[-500:]}"
        )
    return p.stdout


def busy_cpu_seconds() -> float:
    """CPU seconds the whole machine has spent busy (not idle or waiting for I/O)."""
    t = psutil.cpu_times()
    return (
        sum(t)
        - t.idle
        - getattr(t, "iowait", 0.0)
        - getattr(t, "guest", 0.0)
        - getattr(t, "guest_nice", 0.0)
    )


def other_load(seconds: float = 1.0) -> float:
    """Cores kept busy by the rest of the machine over `seconds` (nothing of ours runs)."""
    b0 = busy_cpu_seconds()
    time.sleep(seconds)
    return (busy_cpu_seconds() - b0) / seconds


def dir_bytes(path: Path) -> int:
    """Allocated bytes under `path` (like du)."""
    total = 0
    for dirpath, _dirs, names in os.walk(path):
        for n in names:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, n)).st_blocks * 512
    return total


@dataclass(frozen=True)
class NodeFigures:
    """What one node spent during a step."""

    cpu_s: float
    peak_rss_mib: float


class BenchNode(NodeProcess):
    """A `NodeProcess` that logs only warnings and measures itself across a step."""

    log_level = "warning"  # debug logging would cost the node CPU the bench would count

    def __init__(self, directory: Path, sampler: Sampler) -> None:
        super().__init__(directory)
        self.sampler = sampler
        self._cpu0 = 0.0
        self._spy: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> BenchNode:
        super().start(timeout)
        return self

    def configure(self, **values: object) -> None:
        """Set keys in node.toml (takes effect at the next start)."""
        import tomlkit

        path = self.directory / "node.toml"
        doc = tomlkit.parse(path.read_text())
        for k, v in values.items():
            doc[k] = v
        path.write_text(tomlkit.dumps(doc))

    def snapshots_complete(self, expected: int) -> bool:
        """Whether the node holds `expected` snapshots, each with every chunk."""
        snaps = self.status().snapshots
        return len(snaps) >= expected and all(s.chunks_held == s.chunks_total for s in snaps)

    def store_figures(self) -> dict[str, int]:
        """Chunks and bytes stored (GetStatus) and bytes on disk (du of the node directory)."""
        s = self.status()
        return {
            "chunks_stored": s.chunks_stored,
            "bytes_stored": s.bytes_stored,
            "disk_bytes": dir_bytes(self.directory),
        }

    def log_tail(self, n: int = 8) -> str:
        return "\n    ".join(self.logs().splitlines()[-n:])

    def _cpu(self) -> float:
        assert self.proc is not None
        t = psutil.Process(self.proc.pid).cpu_times()
        return t.user + t.system

    def begin_step(self, profile_to: Path | None = None) -> None:
        """Reset the node's peak-RSS mark and CPU counter before a measured step."""
        if not self.running or self.proc is None:
            raise BenchError(
                f"node {self.name} is not running; log {self.log_path}:\n    " + self.log_tail()
            )
        reset_hwm(self.proc.pid)
        self._cpu0 = self._cpu()
        self.sampler.watch(f"node:{self.name}", self.proc.pid)
        if profile_to is not None:
            self._spy = subprocess.Popen(
                [*py_spy_record(profile_to), "--pid", str(self.proc.pid)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )

    def end_step(self) -> NodeFigures:
        """CPU seconds and peak RSS since `begin_step`."""
        if self._spy is not None:
            self._spy.send_signal(signal.SIGINT)
            try:
                self._spy.wait(30)
            except subprocess.TimeoutExpired:
                self._spy.kill()
            self._spy = None
        if not self.running or self.proc is None:
            raise BenchError(
                f"node {self.name} died during the step; log {self.log_path}:\n    "
                + self.log_tail()
            )
        sampled, _ = self.sampler.unwatch(f"node:{self.name}")
        return NodeFigures(
            cpu_s=round(self._cpu() - self._cpu0, 2),
            peak_rss_mib=round(max(read_hwm(self.proc.pid), sampled) / MiB, 1),
        )

    def stop(self, timeout: float = 30.0) -> int:
        if self._spy is not None:
            self._spy.kill()
            self._spy.wait()
            self._spy = None
        return super().stop(timeout)
