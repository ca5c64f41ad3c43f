#!/usr/bin/env python3
"""samizdat benchmark: real node process, real CLI, generated archive-like data.

    python bench/bench.py --size 2G --out bench/out/results.json

Steps (each a named scenario, see SCENARIOS; pick with --only):
  push_v1   `samizdat push` of v1 into an empty node        MB/s = v1 plaintext bytes / wall time
  push_v2   `samizdat push` of v2 (edited v1)                MB/s, and bytes newly stored
  push_v2_again  `samizdat push` of v2 again, unchanged (files cache: no file read)
  restore   `samizdat restore` of the latest snapshot (v2) into a fresh directory, then a
            byte-for-byte comparison with v2 (not timed); again on tmpfs (restore_tmpfs) when
            /dev/shm has room; before each, `cp -a` of v2 to the same file system: the floor
            that creating ~14,000 files and ~18,000 directories costs there
  verify    `samizdat verify` of the latest snapshot (downloads, decrypts, checks, writes nothing)
  backfill  a new, empty node n2 peered with n1 pulls the whole archive; wall time from its
            start until GetStatus shows every snapshot complete (MB/s of plaintext and of
            stored bytes)
  noop      n2 complete, pulling from n1 every 0.2 s through a byte-counting proxy: ms per
            round (the node's own histogram) and bytes per round (both directions, with TLS)
  restore3  a third node n3 back-fills from n1 and n2, then `samizdat restore` of v2 from all
            three nodes at once, compared with v2
  scrub     n1 restarted with an unlimited scrub rate; wall time of one whole pass
  peers     the same push v1 / push v2 / restore / verify with restic and borg (installed with
            apt-get if missing; --no-peers skips), printed as ratios

Every command runs as a subprocess. For each one the bench records wall time, CPU time
(user+sys, from wait4), the CLI's peak RSS (VmHWM, the kernel's high-water mark, read with RSS
by a psutil sampler every 50 ms over the process tree; the largest single process counts), and
the node process's peak RSS during the step (its VmHWM is reset through
/proc/PID/clear_refs before each step) and CPU time.

The node is started with `samizdat-node init/host/serve` in a temporary run directory under
--workdir, with TLS on loopback (the client pins its id: NODE_ID@127.0.0.1:PORT), and always
stopped at the end (SIGTERM, then SIGKILL). Data stays in the page cache (the machine has the
RAM, and dropping caches needs privileges a bench should not need): figures are CPU and
pipeline bound, not disk-read bound. `sync` runs between steps so that dirty pages of one step
are not written back during the next.

--profile DIR wraps every samizdat CLI run in `py-spy record` and attaches py-spy to the node
for the duration of each step; raw (collapsed) stacks land in DIR and bench/profile_summary.py
turns them into top-function tables.

Adding a scenario: write `def scenario_x(b: Bench) -> None` that uses b.node(...),
b.run_cli(...), b.record(...), and add it to SCENARIOS. Node supports peer_add(), so a
back-fill (second empty node pulling from the first) or a three-node restore is a few lines.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import gen_data  # noqa: E402

MiB = 1 << 20
TARGETS = {  # DESIGN.md §5
    "push_v1": ("MB/s", 250.0),
    "push_v2": ("MB/s", 250.0),
    "restore": ("MB/s", 300.0),
    "restore_tmpfs": ("MB/s", 300.0),
    "restore3": ("MB/s", 300.0),
    "backfill": ("MB/s", 250.0),
    "scrub": ("MB/s", 1000.0),
    "noop_ms": ("ms", 50.0),
    "noop_bytes": ("B", 16384.0),
    "rss": ("MiB", 300.0),
}
PASSWORD = "bench-passphrase-not-secret"
SNAPSHOTS = 3  # the push scenario stores v1, v2 and v2 again (unchanged: the files cache)
# Pushes of the push scenario (and of restic and borg): step name, data version.
PUSHES = (("v1", "v1"), ("v2", "v2"), ("v2_again", "v2"))


class BenchError(Exception):
    """A one-line, user-facing failure."""


# --------------------------------------------------------------------------- processes


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
    # Peak RSS comes from the sampler's VmHWM reads, not from ru_maxrss: Linux carries the
    # parent's high-water mark into the child's ru_maxrss across fork+exec.
    r = Run(cmd, proc.returncode, seconds, rusage.ru_utime + rusage.ru_stime, peak, stdout, stderr)
    if check and r.rc != 0:
        tail = (stderr.strip() or stdout.strip()).splitlines()[-5:]
        raise BenchError(
            f"{' '.join(Path(c).name if i == 0 else c for i, c in enumerate(cmd[:4]))}"
            f" ... failed with exit code {r.rc}:\n    " + "\n    ".join(tail)
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
            f"{' '.join(Path(c).name if i == 0 else c for i, c in enumerate(cmd[:4]))}"
            f" failed ({p.returncode}): {(p.stderr or p.stdout).strip()[-500:]}"
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


# ------------------------------------------------------------------------------ node


class Node:
    """One `samizdat-node` in the run directory: init, host, peer add, serve, stop."""

    def __init__(self, bench: Bench, name: str) -> None:
        self.bench, self.name = bench, name
        self.dir = bench.run_dir / name
        self.proc: subprocess.Popen[bytes] | None = None
        self.node_id = ""
        self.port = 0
        self.log_path = bench.run_dir / f"{name}.log"
        self._log = None
        self._cpu0 = 0.0
        self._spy: subprocess.Popen[bytes] | None = None

    def init(self) -> str:
        self.node_id = simple(
            [
                tool("samizdat-node"),
                "init",
                str(self.dir),
                "--listen",
                "127.0.0.1:0",
                "--name",
                self.name,
            ]
        ).strip()
        return self.node_id

    def host(self, archive_id: str) -> None:
        simple([tool("samizdat-node"), "host", str(self.dir), archive_id])

    def peer_add(self, other: Node) -> None:
        simple(
            [
                tool("samizdat-node"),
                "peer",
                "add",
                str(self.dir),
                other.node_id,
                f"127.0.0.1:{other.port}",
            ]
        )

    def configure(self, **values: object) -> None:
        """Set keys in node.toml (takes effect at the next start)."""
        import tomlkit

        path = self.dir / "node.toml"
        doc = tomlkit.parse(path.read_text())
        for k, v in values.items():
            doc[k] = v
        path.write_text(tomlkit.dumps(doc))

    def snapshots_complete(self, expected: int) -> bool:
        """Whether the node holds `expected` snapshots, each with every chunk."""
        client = self.client()
        try:
            snaps = client.status().snapshots
        finally:
            client.close()
        return len(snaps) >= expected and all(s.chunks_held == s.chunks_total for s in snaps)

    @property
    def address(self) -> str:
        return f"{self.node_id}@127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> None:
        ready = self.dir / "bench-ready"
        ready.unlink(missing_ok=True)
        self._log = open(self.log_path, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                tool("samizdat-node"),
                "serve",
                str(self.dir),
                "--ready-file",
                str(ready),
                "--log-level",
                "warning",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while not (ready.exists() and ready.read_text().strip()):
            if self.proc.poll() is not None:
                raise BenchError(
                    f"node {self.name} exited with {self.proc.returncode} at start; "
                    f"log {self.log_path}:\n    " + self.log_tail()
                )
            if time.monotonic() > deadline:
                raise BenchError(
                    f"node {self.name} not ready after {timeout:.0f}s; log {self.log_path}"
                )
            time.sleep(0.05)
        self.port = int(ready.read_text().strip())

    def log_tail(self, n: int = 8) -> str:
        try:
            return "\n    ".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def begin_step(self, profile_to: Path | None = None) -> None:
        """Reset the node's peak-RSS mark and CPU counter before a measured step."""
        if not self.alive():
            raise BenchError(
                f"node {self.name} is not running; log {self.log_path}:\n    " + self.log_tail()
            )
        reset_hwm(self.pid)
        t = psutil.Process(self.pid).cpu_times()
        self._cpu0 = t.user + t.system
        self.bench.sampler.watch(f"node:{self.name}", self.pid)
        if profile_to is not None:
            self._spy = subprocess.Popen(
                [*py_spy_record(profile_to), "--pid", str(self.pid)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )

    def end_step(self) -> dict[str, float]:
        if self._spy is not None:
            self._spy.send_signal(signal.SIGINT)
            try:
                self._spy.wait(30)
            except subprocess.TimeoutExpired:
                self._spy.kill()
            self._spy = None
        if not self.alive():
            raise BenchError(
                f"node {self.name} died during the step; log {self.log_path}:\n    "
                + self.log_tail()
            )
        sampled, _ = self.bench.sampler.unwatch(f"node:{self.name}")
        t = psutil.Process(self.pid).cpu_times()
        return {
            "node_peak_rss_mib": round(max(read_hwm(self.pid), sampled) / MiB, 1),
            "node_cpu_s": round(t.user + t.system - self._cpu0, 2),
        }

    def client(self, key_path: Path | None = None):  # type: ignore[no-untyped-def]
        try:
            from samizdat.rpc.remote import NodeClient
        except ImportError:  # older layout
            from samizdat.client.remote import NodeClient  # type: ignore[no-redef]
        from samizdat.rpc.address import NodeAddress

        key = None
        if key_path is not None:
            from samizdat.core.keys import load_key

            key = load_key(key_path, None)
        return NodeClient(NodeAddress.parse(self.address), key)

    def status(self) -> dict[str, int]:
        client = self.client()
        try:
            s = client.status()
        finally:
            client.close()
        return {
            "chunks_stored": s.chunks_stored,
            "bytes_stored": s.bytes_stored,
            "disk_bytes": dir_bytes(self.dir),
        }

    def stop(self) -> None:
        if self._spy is not None:
            self._spy.kill()
            self._spy = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self._log is not None:
            self._log.close()
            self._log = None


# ----------------------------------------------------------------------------- compare


def compare_trees(a: Path, b: Path) -> list[str]:
    """Differences between two trees: names, kinds, symlink targets, sizes, bytes, file modes
    and mtimes (to the second). Empty list = identical. Content compared in 8 MiB blocks."""
    problems: list[str] = []

    def listing(root: Path) -> dict[str, os.stat_result]:
        out = {}
        for dirpath, dirs, names in os.walk(root):
            for n in dirs + names:
                full = os.path.join(dirpath, n)
                out[os.path.relpath(full, root)] = os.lstat(full)
        return out

    la, lb = listing(a), listing(b)
    for rel in sorted(set(la) ^ set(lb)):
        problems.append(f"only in {'source' if rel in la else 'restore'}: {rel}")
    import stat as st_mod

    for rel in sorted(set(la) & set(lb)):
        sa, sb = la[rel], lb[rel]
        if st_mod.S_IFMT(sa.st_mode) != st_mod.S_IFMT(sb.st_mode):
            problems.append(f"kind differs: {rel}")
            continue
        if st_mod.S_ISLNK(sa.st_mode):
            if os.readlink(a / rel) != os.readlink(b / rel):
                problems.append(f"symlink target differs: {rel}")
            continue
        if st_mod.S_IMODE(sa.st_mode) != st_mod.S_IMODE(sb.st_mode):
            problems.append(f"mode differs: {rel}")
        if st_mod.S_ISREG(sa.st_mode):
            if sa.st_mtime_ns // 10**9 != sb.st_mtime_ns // 10**9:
                problems.append(f"mtime differs: {rel}")
            if sa.st_size != sb.st_size:
                problems.append(f"size differs: {rel}")
                continue
            with open(a / rel, "rb") as fa, open(b / rel, "rb") as fb:
                while True:
                    x, y = fa.read(8 * MiB), fb.read(8 * MiB)
                    if x != y:
                        problems.append(f"content differs: {rel}")
                        break
                    if not x:
                        break
        if len(problems) > 50:
            problems.append("... (more)")
            break
    return problems


# ------------------------------------------------------------------------------- bench


@dataclass
class Step:
    tool: str
    name: str
    plaintext_bytes: int
    seconds: float
    mb_s: float
    cpu_s: float
    peak_rss_mib: float
    extra: dict[str, object] = field(default_factory=dict)

    @classmethod
    def node_side(cls, name: str, nbytes: int, seconds: float, extra: dict[str, object]) -> Step:
        """A step that runs inside node processes only (no CLI CPU or RSS of its own)."""
        return cls("samizdat", name, nbytes, round(seconds, 2), round(nbytes / seconds / 1e6, 1),
                   0.0, 0.0, extra)  # fmt: skip


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.workdir: Path = args.workdir
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        self.run_dir = self.workdir / f"run-{stamp}-{os.getpid()}"
        self.sampler = Sampler(args.sample_interval)
        self.nodes: dict[str, Node] = {}
        self.steps: list[Step] = []
        self.notes: list[str] = []
        self.manifest: dict = {}
        self.data: Path = Path()
        self.key_path = self.run_dir / "archive.key"
        self.archive_id = ""
        self.snapshots: dict[str, dict] = {}
        self.profile_dir: Path | None = args.profile
        self.loadavg = [round(x, 2) for x in os.getloadavg()]
        self.env = dict(os.environ)
        self.env.pop("SAMIZDAT_PASSPHRASE", None)
        # The push id cache of this run (like restic's cache below), not the user's.
        self.env["SAMIZDAT_CACHE_DIR"] = str(self.run_dir / "id-cache")

    # helpers -------------------------------------------------------------------------

    def node(self, name: str) -> Node:
        if name not in self.nodes:
            self.nodes[name] = Node(self, name)
        return self.nodes[name]

    def say(self, text: str) -> None:
        print(text, flush=True)

    def sync(self) -> None:
        os.sync()

    def run_cli(
        self,
        name: str,
        args: list[str],
        node: Node | None = None,
        plaintext_bytes: int = 0,
        tool_name: str = "samizdat",
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        cmd: list[str] | None = None,
    ) -> tuple[Step, Run]:
        """Run one measured step: a samizdat CLI command (or `cmd` for other tools)."""
        self.sync()
        full = cmd if cmd is not None else [tool("samizdat"), *args]
        spy_node = None
        if self.profile_dir is not None and tool_name == "samizdat":
            self.profile_dir.mkdir(parents=True, exist_ok=True)
            full = [*py_spy_record(self.profile_dir / f"{name}-cli.txt"), "--", *full]
            spy_node = self.profile_dir / f"{name}-node.txt"
        if node is not None:
            node.begin_step(spy_node)
        self.wait_quiet()
        self.say(f"  {tool_name:<8} {name} ...")
        busy0 = busy_cpu_seconds()
        r = run_measured(
            full, self.sampler, cwd=cwd, env=env or self.env, timeout=self.args.timeout
        )
        busy = busy_cpu_seconds() - busy0
        extra: dict[str, object] = node.end_step() if node is not None else {}
        # CPU the rest of the machine used meanwhile (other processes, kernel writeback):
        # on a shared 2-core machine this is what makes wall-clock figures unreliable.
        other = max(0.0, busy - r.cpu_seconds - float(extra.get("node_cpu_s", 0.0)))
        extra["other_cpu_s"] = round(other, 1)
        if other / r.seconds > 0.25:
            self.notes.append(
                f"{tool_name} {name}: the rest of the machine kept "
                f"{other / r.seconds:.1f} cores busy during the step"
            )
        mb_s = plaintext_bytes / r.seconds / 1e6 if plaintext_bytes else 0.0
        step = Step(
            tool_name,
            name,
            plaintext_bytes,
            round(r.seconds, 2),
            round(mb_s, 1),
            round(r.cpu_seconds, 2),
            round(r.peak_rss / MiB, 1),
            extra,
        )
        self.steps.append(step)
        self.say(
            f"           {r.seconds:7.1f} s  {mb_s:7.1f} MB/s  CPU {r.cpu_seconds:6.1f} s  "
            f"RSS {r.peak_rss / MiB:6.1f} MiB"
            + (
                f"  node RSS {extra['node_peak_rss_mib']} MiB CPU {extra['node_cpu_s']} s"
                if "node_cpu_s" in extra
                else ""
            )
            + f"  (others {other:.1f} CPU s)"
        )
        return step, r

    def wait_quiet(self) -> None:
        """Wait (up to --quiet-wait seconds) until other processes use < 0.2 cores."""
        deadline = time.monotonic() + self.args.quiet_wait
        load = other_load(0.5)
        while load > 0.2 and time.monotonic() < deadline:
            load = other_load(1.0)
        if load > 0.2:
            self.say(f"           (machine busy: {load:.1f} cores used by other processes)")

    def settle(self, tree: Path) -> None:
        """Delete a restored tree, then wait --settle seconds if it was on the disk: ext4
        without a journal scans the inodes deleted in the last 30 s on every allocation,
        which would slow the next step's file creation down (tmpfs needs no wait)."""
        if not tree.exists():
            return
        shutil.rmtree(tree, ignore_errors=True)
        os.sync()
        if not str(tree).startswith("/dev/shm/"):
            time.sleep(self.args.settle)

    def record(self, tool_name: str, name: str, **extra: object) -> None:
        """Attach figures to an existing step (or a figures-only step)."""
        for s in self.steps:
            if s.tool == tool_name and s.name == name:
                s.extra.update(extra)
                return
        self.steps.append(Step(tool_name, name, 0, 0, 0, 0, 0, dict(extra)))

    def get(self, tool_name: str, name: str) -> Step | None:
        return next((s for s in self.steps if s.tool == tool_name and s.name == name), None)

    # lifecycle -----------------------------------------------------------------------

    def setup(self) -> None:
        out = self.args.data or gen_data.default_out(self.args.size, self.args.seed, self.workdir)
        self.manifest = gen_data.generate(self.args.size, self.args.seed, out)
        self.data = out
        self.run_dir.mkdir(parents=True)
        self.sampler.start()
        self.archive_id = simple(
            [tool("samizdat"), "key", "new", str(self.key_path)], env=self.env
        ).strip()
        n1 = self.node("n1")
        n1.init()
        n1.host(self.archive_id)
        n1.start()
        self.say(f"node n1 {n1.address} (TLS, pinned) in {n1.dir}")

    def teardown(self) -> None:
        for n in self.nodes.values():
            try:
                n.stop()
            except Exception as e:  # keep stopping the others
                print(f"warning: stopping node {n.name}: {e}", file=sys.stderr)
        self.sampler.stop()
        if not self.args.keep and self.run_dir.exists():
            shutil.rmtree(self.run_dir, ignore_errors=True)

    def results(self) -> dict:
        return {
            "meta": machine_info()
            | {
                "date": datetime.datetime.now().isoformat(timespec="seconds"),
                "commit": git_commit(),
                "data": str(self.data),
                "size": self.manifest.get("size"),
                "seed": self.manifest.get("seed"),
                "v1": self.manifest.get("v1"),
                "v2": self.manifest.get("v2"),
                "edits_inserted_bytes": self.manifest.get("inserted_bytes"),
                "edits_deleted_bytes": self.manifest.get("deleted_bytes"),
                "page_cache": "data and repositories are in the page cache (not dropped)",
                "profiled": self.profile_dir is not None,
                "loadavg_at_start": self.loadavg,
            },
            "targets": {k: {"unit": u, "value": v} for k, (u, v) in TARGETS.items()},
            "steps": [asdict(s) for s in self.steps],
            "notes": self.notes,
        }


# --------------------------------------------------------------------------- scenarios


def scenario_push(b: Bench) -> None:
    n1 = b.node("n1")
    key = ["--key", str(b.key_path), "--node", n1.address]
    before = n1.status()
    for name, version in PUSHES:
        step, run = b.run_cli(
            f"push_{name}",
            ["push", *key, str(b.data / version)],
            n1,
            b.manifest[version]["bytes"],
        )
        after = n1.status()
        step.extra.update(
            {
                "new_chunks": after["chunks_stored"] - before["chunks_stored"],
                "new_stored_bytes": after["bytes_stored"] - before["bytes_stored"],
                "new_disk_bytes": after["disk_bytes"] - before["disk_bytes"],
                "store_chunks": after["chunks_stored"],
                "store_bytes": after["bytes_stored"],
                "store_disk_bytes": after["disk_bytes"],
                "cli_summary": run.stdout.strip().splitlines()[-2:],
            }
        )
        before = after


def tmpfs_dir(b: Bench) -> Path | None:
    """A fresh directory on tmpfs (/dev/shm) with room for two copies of v2, or None."""
    shm = Path("/dev/shm")
    if not shm.is_dir() or shutil.disk_usage(shm).free < 2.5 * b.manifest["v2"]["bytes"]:
        return None
    return Path(tempfile.mkdtemp(prefix="samizdat-bench-", dir=shm))


def scenario_restore(b: Bench) -> None:
    """Restore v2 into a fresh directory on the disk (compared with restic and borg) and on
    tmpfs, each next to the floor of the file system: `cp -a` of the plain v2 tree."""
    n1 = b.node("n1")
    nbytes = b.manifest["v2"]["bytes"]
    shm = tmpfs_dir(b)
    targets = [("", b.run_dir)] + ([("_tmpfs", shm)] if shm is not None else [])
    try:
        for suffix, base in targets:
            dest = base / "restore-samizdat"
            step, _ = b.run_cli(
                f"restore{suffix}",
                ["restore", "--key", str(b.key_path), "--node", n1.address, str(dest)],
                n1,
                nbytes,
            )
            check_restore(b, step, b.data / "v2", dest)
            floor = base / "cp-floor"
            b.run_cli(
                f"restore{suffix}",
                [],
                None,
                nbytes,
                "cp -a",
                cmd=["cp", "-a", str(b.data / "v2"), str(floor)],
            )
            b.settle(floor)
    finally:
        if shm is not None:
            shutil.rmtree(shm, ignore_errors=True)


def check_restore(b: Bench, step: Step, source: Path, dest: Path) -> None:
    t = time.perf_counter()
    problems = compare_trees(source, dest)
    step.extra["compare_seconds"] = round(time.perf_counter() - t, 1)
    step.extra["identical"] = not any(
        not p.startswith("mtime") and not p.startswith("mode") for p in problems
    )
    step.extra["differences"] = problems[:20]
    if problems:
        b.say(f"           {len(problems)} difference(s): " + "; ".join(problems[:5]))
    else:
        b.say(
            f"           identical to {source.name} (compared in {step.extra['compare_seconds']} s)"
        )
    if not step.extra["identical"]:
        b.notes.append(f"{step.tool} restore differs from the source: {problems[:5]}")
    if not b.args.keep:
        b.settle(dest)


def scenario_verify(b: Bench) -> None:
    n1 = b.node("n1")
    b.run_cli(
        "verify",
        ["verify", "--key", str(b.key_path), "--node", n1.address],
        n1,
        b.manifest["v2"]["bytes"],
    )


def ensure_peer_tools() -> None:
    missing = [t for t in ("restic", "borg") if not shutil.which(t)]
    if not missing:
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise BenchError(
            f"{', '.join(missing)} not installed: run "
            "`sudo apt-get install -y restic borgbackup`, or pass --no-peers"
        )
    print(f"installing restic and borgbackup with apt-get (missing: {', '.join(missing)})")
    cmd = ["apt-get", "install", "-y", "-q", "restic", "borgbackup"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if subprocess.run(cmd, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True)
        p = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if p.returncode != 0:
            raise BenchError(
                f"apt-get install restic borgbackup failed: {p.stderr.strip()[-300:]}"
                " (or pass --no-peers)"
            )


def scenario_peers(b: Bench) -> None:
    ensure_peer_tools()
    v2 = b.data / "v2"
    nbytes = {"v1": b.manifest["v1"]["bytes"], "v2": b.manifest["v2"]["bytes"]}

    # restic: default compression (auto) and encryption; repository on the same disk.
    repo = b.run_dir / "restic-repo"
    env = dict(
        b.env,
        RESTIC_PASSWORD=PASSWORD,
        RESTIC_REPOSITORY=str(repo),
        RESTIC_CACHE_DIR=str(b.run_dir / "restic-cache"),
    )
    restic = tool("restic")
    b.say(f"  {simple([restic, 'version'], env=env).strip()}")
    simple([restic, "init", "-q"], env=env)
    for name, version in PUSHES:
        before = dir_bytes(repo)
        step, _ = b.run_cli(
            f"push_{name}",
            [],
            None,
            nbytes[version],
            "restic",
            cwd=b.data / version,
            env=env,
            cmd=[restic, "backup", "-q", "--host", "bench", "."],
        )
        step.extra["new_disk_bytes"] = dir_bytes(repo) - before
        step.extra["store_disk_bytes"] = dir_bytes(repo)
    dest = b.run_dir / "restore-restic"
    step, _ = b.run_cli(
        "restore",
        [],
        None,
        nbytes["v2"],
        "restic",
        env=env,
        cmd=[restic, "restore", "-q", "latest", "--target", str(dest)],
    )
    check_restore(b, step, v2, dest)  # `backup .` restores at the target's root
    b.run_cli(
        "verify",
        [],
        None,
        nbytes["v2"],
        "restic",
        env=env,
        cmd=[restic, "check", "-q", "--read-data"],
    )

    # borg: repokey encryption, default compression (lz4), default chunker (2 MiB average).
    repo = b.run_dir / "borg-repo"
    env = dict(
        b.env,
        BORG_PASSPHRASE=PASSWORD,
        BORG_BASE_DIR=str(b.run_dir / "borg-base"),
        BORG_RELOCATED_REPO_ACCESS_IS_OK="yes",
        BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK="yes",
    )
    borg = tool("borg")
    b.say(f"  {simple([borg, '--version'], env=env).strip()}")
    simple([borg, "init", "--encryption=repokey", str(repo)], env=env)
    for name, version in PUSHES:
        before = dir_bytes(repo)
        step, _ = b.run_cli(
            f"push_{name}",
            [],
            None,
            nbytes[version],
            "borg",
            cwd=b.data / version,
            env=env,
            cmd=[borg, "create", f"{repo}::{name}", "."],
        )
        step.extra["new_disk_bytes"] = dir_bytes(repo) - before
        step.extra["store_disk_bytes"] = dir_bytes(repo)
    dest = b.run_dir / "restore-borg"
    dest.mkdir()
    step, _ = b.run_cli(
        "restore",
        [],
        None,
        nbytes["v2"],
        "borg",
        cwd=dest,
        env=env,
        cmd=[borg, "extract", f"{repo}::v2"],
    )
    check_restore(b, step, v2, dest)
    b.run_cli(
        "verify",
        [],
        None,
        nbytes["v2"],
        "borg",
        env=env,
        cmd=[borg, "check", "--verify-data", str(repo)],
    )


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stored_bytes(b: Bench) -> int:
    client = b.node("n1").client()
    try:
        return int(client.status().bytes_stored)
    finally:
        client.close()


def timed_backfill(b: Bench, name: str, puller: Node, sources: list[Node]) -> None:
    """Start the empty node `puller` (peered with `sources`), time until it holds every
    snapshot completely. MB/s = stored (encrypted, compressed) bytes pulled / wall time from
    process start; also given per plaintext byte of the whole archive (v1 + v2's new data)."""
    expected = SNAPSHOTS
    puller.init()
    puller.host(b.archive_id)
    puller.configure(sync_interval=0.5)
    for src in sources:
        puller.peer_add(src)
        src.peer_add(puller)  # the source serves only pinned peers; the running node reloads
    total = stored_bytes(b)
    for src in sources:
        src.begin_step()
    b.wait_quiet()
    b.say(
        f"  samizdat {name} ({gen_data.human(total)} stored, from "
        f"{', '.join(s.name for s in sources)}) ..."
    )
    busy0 = busy_cpu_seconds()
    t0 = time.perf_counter()
    puller.start()
    profile = None
    if b.profile_dir is not None:
        b.profile_dir.mkdir(parents=True, exist_ok=True)
        profile = b.profile_dir / f"{name}-node.txt"
    puller.begin_step(profile)
    while not puller.snapshots_complete(expected):
        if time.perf_counter() - t0 > b.args.timeout:
            raise BenchError(f"{name}: {puller.name} incomplete after {b.args.timeout:.0f}s")
        time.sleep(0.05)
    seconds = time.perf_counter() - t0
    busy = busy_cpu_seconds() - busy0
    extra: dict[str, object] = puller.end_step()
    src_cpu = 0.0
    for src in sources:
        e = src.end_step()
        src_cpu += e["node_cpu_s"]
        extra[f"source_{src.name}_peak_rss_mib"] = e["node_peak_rss_mib"]
    extra.update(
        source_cpu_s=round(src_cpu, 2),
        stored_bytes=total,
        stored_mb_s=round(total / seconds / 1e6, 1),
        other_cpu_s=round(max(0.0, busy - extra["node_cpu_s"] - src_cpu), 1),
    )
    plaintext = b.manifest["v1"]["bytes"] + b.manifest.get("inserted_bytes", 0)
    step = Step.node_side(name, plaintext, seconds, extra)
    b.steps.append(step)
    b.say(
        f"           {seconds:7.1f} s  {total / seconds / 1e6:7.1f} MB/s stored "
        f"({step.mb_s:.1f} MB/s plaintext)  node RSS {extra['node_peak_rss_mib']} MiB "
        f"CPU {extra['node_cpu_s']} s (sources {src_cpu:.1f} s)"
    )


def scenario_backfill(b: Bench) -> None:
    """A new, empty node n2 back-fills the whole archive from n1 over loopback (TLS)."""
    timed_backfill(b, "backfill", b.node("n2"), [b.node("n1")])


def scenario_noop(b: Bench) -> None:
    """The cost of a replication round that finds nothing new (n2 pulling from n1)."""
    sys.path.insert(0, str(HERE.parent))
    from noop import measure_noop  # noqa: I001 (bench/ sibling module)
    from tests.netfaults import TcpLink

    n1, n2 = b.node("n1"), b.node("n2")
    if n2.proc is None:
        scenario_backfill(b)
    n2.stop()
    proxy = TcpLink(n1.port)
    metrics_port = free_port()
    try:
        simple(
            [
                tool("samizdat-node"),
                "peer",
                "add",
                str(n2.dir),
                n1.node_id,
                f"127.0.0.1:{proxy.port}",
            ]
        )
        n2.configure(sync_interval=0.2, metrics_listen=f"127.0.0.1:{metrics_port}")
        n2.start()
        if not n2.snapshots_complete(SNAPSHOTS):
            raise BenchError("noop: n2 is not complete")
        b.say("  samizdat noop round (n2 pulls from n1 every 0.2 s; 10 s) ...")
        cost = measure_noop(metrics_port, proxy.reset, n1.node_id, seconds=10.0, settle=2.0)
    finally:
        n2.stop()
        simple(
            [tool("samizdat-node"), "peer", "add", str(n2.dir), n1.node_id, f"127.0.0.1:{n1.port}"]
        )
        n2.configure(sync_interval=0.5)
        proxy.close()
    b.record(
        "samizdat",
        "noop_round",
        rounds=cost.rounds,
        ms_per_round=round(cost.ms_per_round, 2),
        bytes_per_round=round(cost.bytes_per_round),
        store_chunks=n1.status()["chunks_stored"],
    )
    b.say(
        f"           {cost.rounds} rounds: {cost.ms_per_round:.1f} ms and "
        f"{cost.bytes_per_round:.0f} B per round (both directions, TLS included)"
    )
    n2.start()


def scenario_restore3(b: Bench) -> None:
    """Restore v2 from three nodes at once (n1, n2 and n3; n3 back-fills from n1 and n2)."""
    n1, n2, n3 = b.node("n1"), b.node("n2"), b.node("n3")
    if n2.proc is None:
        scenario_backfill(b)
    if n3.proc is None:
        timed_backfill(b, "backfill_2_peers", n3, [n1, n2])
    dest = b.run_dir / "restore3-samizdat"
    step, run = b.run_cli(
        "restore3",
        [
            "restore",
            "--key",
            str(b.key_path),
            "--json",
            "--node",
            n1.address,
            "--node",
            n2.address,
            "--node",
            n3.address,
            str(dest),
        ],
        n1,
        b.manifest["v2"]["bytes"],
    )
    try:
        summary = json.loads(run.stdout)
        step.extra["mib_per_source"] = [s["bytes"] // MiB for s in summary["sources"]]
    except (ValueError, KeyError):
        pass
    check_restore(b, step, b.data / "v2", dest)


def scenario_scrub(b: Bench) -> None:
    """One full scrub pass of n1 at an unlimited rate (store in the page cache)."""
    n1 = b.node("n1")
    n1.stop()
    n1.configure(scrub_rate_mb=1_000_000, scrub_interval=0)
    n1.start()
    total = stored_bytes(b)

    def passes() -> tuple[int, int]:
        client = n1.client()
        try:
            st = client.status().scrub
        finally:
            client.close()
        return int(st.passes_completed), int(st.chunks_checked)

    b.say(f"  samizdat scrub of n1 ({gen_data.human(total)} stored) ...")
    n1.begin_step()
    deadline = time.perf_counter() + b.args.timeout
    p0, _ = passes()
    while passes()[0] == p0:  # finish the pass in progress
        if time.perf_counter() > deadline:
            raise BenchError("scrub: no pass completed")
        time.sleep(0.01)
    t0 = time.perf_counter()
    while passes()[0] <= p0 + 1:  # time one whole pass
        if time.perf_counter() > deadline:
            raise BenchError("scrub: the timed pass did not complete")
        time.sleep(0.01)
    seconds = time.perf_counter() - t0
    extra: dict[str, object] = n1.end_step()
    n1.stop()
    n1.configure(scrub_rate_mb=50, scrub_interval=86400)
    n1.start()
    extra.update(stored_bytes=total)
    step = Step.node_side("scrub", total, seconds, extra)
    b.steps.append(step)
    b.say(
        f"           {seconds:7.2f} s  {step.mb_s:7.1f} MB/s stored bytes re-hashed  "
        f"node CPU {extra['node_cpu_s']} s"
    )


SCENARIOS: dict[str, Callable[[Bench], None]] = {
    "push": scenario_push,
    "restore": scenario_restore,
    "verify": scenario_verify,
    "backfill": scenario_backfill,
    "noop": scenario_noop,
    "restore3": scenario_restore3,
    "scrub": scenario_scrub,
    "peers": scenario_peers,
}


# ----------------------------------------------------------------------------- report


def machine_info() -> dict:
    cpu = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gib": round(psutil.virtual_memory().total / (1 << 30), 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "-C", str(HERE.parent), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def print_report(b: Bench) -> None:
    rows = [
        ("push_v1", "push v1"),
        ("push_v2", "push v2"),
        ("push_v2_again", "re-push v2"),
        ("restore", "restore v2"),
        ("restore_tmpfs", "restore shm"),
        ("restore3", "restore 3n"),
        ("verify", "verify v2"),
        ("backfill", "back-fill"),
        ("backfill_2_peers", "back-fill2"),
        ("scrub", "scrub"),
    ]
    peers = [t for t in ("cp -a", "restic", "borg") if any(s.tool == t for s in b.steps)]
    m = b.manifest
    print()
    print(
        f"data: v1 {m['v1']['files']} files {gen_data.human(m['v1']['bytes'])}, "
        f"v2 {gen_data.human(m['v2']['bytes'])} (edits +{gen_data.human(m['inserted_bytes'])}"
        f" -{gen_data.human(m['deleted_bytes'])}); in page cache; "
        f"{os.cpu_count()} cores"
    )
    head = (
        f"{'operation':<11} {'MB/s':>7} {'target':>7} {'wall s':>7} {'CPU s':>6} "
        f"{'CLI RSS':>8} {'node RSS':>8} {'node CPU':>8} {'CPU s/GB':>8} {'others':>6}"
    )
    for t in peers:
        head += f" | {t + ' MB/s':>11} {'ratio':>6} {'RSS':>6}"
    print(head)
    print("-" * len(head))
    for key, label in rows:
        s = b.get("samizdat", key)
        if s is None:
            continue
        target = TARGETS.get(key)
        tgt = f"{target[1]:.0f}" if target else "-"
        ok = "" if not target else (" ok" if s.mb_s >= target[1] else " !!")
        node_cpu = float(s.extra.get("node_cpu_s", 0))  # type: ignore[arg-type]
        cpu_per_gb = (s.cpu_s + node_cpu) / (s.plaintext_bytes / 1e9) if s.plaintext_bytes else 0
        line = (
            f"{label:<11} {s.mb_s:>7.1f} {tgt:>5}{ok:<2} {s.seconds:>7.1f} {s.cpu_s:>6.1f} "
            f"{s.peak_rss_mib:>6.0f}Mi {s.extra.get('node_peak_rss_mib', 0):>6.0f}Mi "
            f"{node_cpu:>7.1f}s {cpu_per_gb:>8.1f} {s.extra.get('other_cpu_s', 0):>5.1f}s"
        )
        for t in peers:
            p = b.get(t, key)
            if p is None or not p.mb_s:
                line += f" | {'-':>11} {'-':>6} {'-':>6}"
            else:
                line += f" | {p.mb_s:>11.1f} {s.mb_s / p.mb_s:>5.2f}x {p.peak_rss_mib:>4.0f}Mi"
        print(line)
    print(
        "ratio = samizdat MB/s / tool MB/s (>1: samizdat faster). RSS = peak resident set. "
        "CPU s/GB = CLI + node CPU per GB of plaintext;\nothers = CPU seconds used by the rest "
        "of the machine during the step (a shared machine makes wall times unreliable)."
    )
    print()
    growth = [("samizdat", b.get("samizdat", "push_v2"))] + [
        (t, b.get(t, "push_v2")) for t in peers
    ]
    print("store after v1 and growth from v2 (bytes on disk; samizdat also: stored blob bytes)")
    for t, s in growth:
        if s is None:
            continue
        v1s = b.get(t, "push_v1")
        after_v1 = v1s.extra.get("store_disk_bytes", 0) if v1s else 0
        line = (
            f"  {t:<9} after v1 {gen_data.human(after_v1):>10}"
            f" (disk)   v2 adds {gen_data.human(s.extra.get('new_disk_bytes', 0)):>10} (disk)"
        )
        if "new_stored_bytes" in s.extra:
            line += (
                f", {gen_data.human(s.extra['new_stored_bytes'])} in "
                f"{s.extra['new_chunks']} new chunks (GetStatus)"
            )
        print(line)
    noop = b.get("samizdat", "noop_round")
    if noop is not None:
        print(
            f"no-op replication round: {noop.extra['ms_per_round']} ms and "
            f"{noop.extra['bytes_per_round']} B per round and peer over "
            f"{noop.extra['rounds']} rounds, store of {noop.extra['store_chunks']} chunks "
            f"(target < {TARGETS['noop_ms'][1]:.0f} ms, < {TARGETS['noop_bytes'][1]:.0f} B)"
        )
    for t in ["samizdat", *(t for t in peers if t != "cp -a")]:
        r = b.get(t, "restore")
        if r is not None:
            print(f"  {t} restore identical to v2: {r.extra.get('identical')}")
    worst = max((s.peak_rss_mib for s in b.steps if s.tool == "samizdat"), default=0)
    worst_node = max(
        (float(s.extra.get("node_peak_rss_mib", 0)) for s in b.steps if s.tool == "samizdat"),
        default=0,
    )
    print(
        f"memory: CLI peak {worst:.0f} MiB, node peak {worst_node:.0f} MiB "
        f"(target < {TARGETS['rss'][1]:.0f} MiB)"
    )
    for n in b.notes:
        print(f"note: {n}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Scenarios: " + ", ".join(SCENARIOS),
    )
    ap.add_argument(
        "--size", type=gen_data.parse_size, default=2 * gen_data.GiB, help="size of v1 (default 2G)"
    )
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--workdir",
        type=Path,
        default=Path(os.environ.get("SAMIZDAT_BENCH_DIR", "/tmp/samizdat-bench")),
        help="generated data (reused) and run directories (default /tmp/samizdat-bench)",
    )
    ap.add_argument(
        "--data",
        type=Path,
        default=None,
        help="use this data dir (v1/, v2/, manifest.json) instead",
    )
    ap.add_argument("--out", type=Path, default=None, help="write results JSON here")
    ap.add_argument(
        "--only",
        default=None,
        help=f"comma-separated scenarios (default: all of {','.join(SCENARIOS)})",
    )
    ap.add_argument("--no-peers", action="store_true", help="skip the restic/borg comparison")
    ap.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="DIR",
        help="record py-spy profiles of the CLI and node into DIR",
    )
    ap.add_argument(
        "--keep",
        action="store_true",
        help="keep the run directory (node store, restores, repositories)",
    )
    ap.add_argument("--sample-interval", type=float, default=0.05)
    ap.add_argument(
        "--quiet-wait",
        type=float,
        default=60,
        metavar="SECONDS",
        help="before each step, wait up to this long for other processes to "
        "quieten (< 0.2 cores busy); default 60",
    )
    ap.add_argument(
        "--settle",
        type=float,
        default=31.0,
        metavar="SECONDS",
        help="after deleting a restored tree on disk, wait this long before the "
        "next step (ext4 without a journal scans recently deleted inodes on "
        "every allocation); default 31",
    )
    ap.add_argument("--timeout", type=float, default=3600, help="per command (seconds)")
    args = ap.parse_args(argv)
    names = args.only.split(",") if args.only else list(SCENARIOS)
    if args.no_peers and "peers" in names:
        names.remove("peers")
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        ap.error(f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}")
    if args.profile is not None:
        tool("py-spy")
    args.workdir.mkdir(parents=True, exist_ok=True)
    bench = Bench(args)

    def on_signal(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    rc = 0
    try:
        bench.setup()
        if "push" not in names and any(n != "peers" for n in names):
            names.insert(0, "push")  # every other samizdat scenario needs the snapshots
        for name in names:
            bench.say(f"[{name}]")
            SCENARIOS[name](bench)
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        rc = 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        rc = 130
    finally:
        bench.teardown()
    if bench.steps:
        print_report(bench)
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(bench.results(), indent=1))
            print(f"results written to {args.out}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
