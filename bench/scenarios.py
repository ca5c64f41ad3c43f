"""The bench's scenarios: each a function of the run (`Bench`) that adds measured steps.

Adding one: write `def scenario_x(b: Bench) -> None` using b.node(...), b.run_cli(...) or
b.run_step(...), b.record(...), and add it to SCENARIOS. restic and borg are rows of
PEER_TOOLS (one command line per operation), run by `scenario_peers`.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import gen_data
from harness import BenchError, BenchNode, MiB, busy_cpu_seconds, dir_bytes, simple, tool
from session import Bench, Step

from tests.netfaults import TcpLink
from tests.nodeproc import free_port

PASSWORD = "bench-passphrase-not-secret"
SNAPSHOTS = 3  # the push scenario stores v1, v2 and v2 again (unchanged: the files cache)
# Pushes of the push scenario (and of restic and borg): step name, data version.
PUSHES = (("v1", "v1"), ("v2", "v2"), ("v2_again", "v2"))


# ---------------------------------------------------------------------------- samizdat


def scenario_push(b: Bench) -> None:
    """`samizdat push` of v1 into the empty n1, then of v2, then of v2 again (unchanged: the
    files cache reads no file); store growth from each."""
    n1 = b.node("n1")
    key = ["--key", str(b.key_path), "--node", n1.address]
    before = n1.store_figures()
    for name, version in PUSHES:
        step, run = b.run_cli(
            f"push_{name}",
            ["push", *key, str(b.data / version)],
            [n1],
            b.manifest[version]["bytes"],
            inputs=[b.data / version],
        )
        after = n1.store_figures()
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
    shm = tmpfs_dir(b)
    targets = [("", b.run_dir)] + ([("_tmpfs", shm)] if shm is not None else [])
    try:
        for suffix, base in targets:
            samizdat_restore(b, n1, base / "restore-samizdat", f"restore{suffix}")
            cp_floor(b, base / "cp-floor", f"restore{suffix}")
    finally:
        if shm is not None:
            shutil.rmtree(shm, ignore_errors=True)


def samizdat_restore(b: Bench, node: BenchNode, dest: Path, name: str = "restore") -> Step:
    """A measured `samizdat restore` of v2 from `node` into `dest`, compared with v2."""
    step, _ = b.run_cli(
        name,
        ["restore", "--key", str(b.key_path), "--node", node.address, str(dest)],
        [node],
        b.manifest["v2"]["bytes"],
        inputs=[node.directory],
    )
    check_restore(b, step, b.data / "v2", dest)
    return step


def cp_floor(b: Bench, dest: Path, name: str = "restore") -> Step:
    """A measured `cp -a` of v2 to `dest` (then deleted): the file system's floor."""
    step, _ = b.run_step(
        name,
        ["cp", "-a", str(b.data / "v2"), str(dest)],
        nbytes=b.manifest["v2"]["bytes"],
        tool_name="cp -a",
        inputs=[b.data / "v2"],
    )
    b.settle(dest)
    return step


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
    for rel in sorted(set(la) & set(lb)):
        sa, sb = la[rel], lb[rel]
        if stat.S_IFMT(sa.st_mode) != stat.S_IFMT(sb.st_mode):
            problems.append(f"kind differs: {rel}")
            continue
        if stat.S_ISLNK(sa.st_mode):
            if os.readlink(a / rel) != os.readlink(b / rel):
                problems.append(f"symlink target differs: {rel}")
            continue
        if stat.S_IMODE(sa.st_mode) != stat.S_IMODE(sb.st_mode):
            problems.append(f"mode differs: {rel}")
        if stat.S_ISREG(sa.st_mode):
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


def check_restore(b: Bench, step: Step, source: Path, dest: Path) -> None:
    """Compare a restored tree with its source (not timed), note differences, delete it."""
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
    """`samizdat verify` of v2: download, decrypt, check every file hash, write nothing."""
    n1 = b.node("n1")
    b.run_cli(
        "verify",
        ["verify", "--key", str(b.key_path), "--node", n1.address],
        [n1],
        b.manifest["v2"]["bytes"],
    )


def stored_bytes(node: BenchNode) -> int:
    return int(node.status().bytes_stored)


def timed_backfill(b: Bench, name: str, puller: BenchNode, sources: list[BenchNode]) -> None:
    """Start the empty node `puller` (peered with `sources`), time until it holds every
    snapshot completely. MB/s = stored (encrypted, compressed) bytes pulled / wall time from
    process start; CPU-s/GiB and the main MB/s are per plaintext byte of the whole archive
    (v1 + v2's new data)."""
    puller.init()
    puller.host(b.archive_id)
    puller.configure(sync_interval=0.5)
    for src in sources:
        puller.peer_add(src)
        src.peer_add(puller)  # the source serves only pinned peers; the running node reloads
    total = stored_bytes(b.node("n1"))
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
    puller.begin_step(b.profile_path(name, puller.name))
    while not puller.snapshots_complete(SNAPSHOTS):
        if time.perf_counter() - t0 > b.args.timeout:
            raise BenchError(f"{name}: {puller.name} incomplete after {b.args.timeout:.0f}s")
        time.sleep(0.05)
    seconds = time.perf_counter() - t0
    busy = busy_cpu_seconds() - busy0
    pulled = puller.end_step()
    cpu = {puller.name: pulled.cpu_s}
    extra: dict[str, object] = {
        "node_cpu_s": pulled.cpu_s,
        "node_peak_rss_mib": pulled.peak_rss_mib,
    }
    for src in sources:
        e = src.end_step()
        cpu[src.name] = e.cpu_s
        extra[f"source_{src.name}_peak_rss_mib"] = e.peak_rss_mib
    src_cpu = sum(cpu.values()) - pulled.cpu_s
    extra.update(
        source_cpu_s=round(src_cpu, 2),
        stored_bytes=total,
        stored_mb_s=round(total / seconds / 1e6, 1),
        other_cpu_s=b.others(name, "samizdat", busy - sum(cpu.values()), seconds),
    )
    plaintext = b.manifest["v1"]["bytes"] + b.manifest.get("inserted_bytes", 0)
    step = Step.measured("samizdat", name, plaintext, seconds, cpu, extra=extra)
    b.steps.append(step)
    b.say(
        f"           {seconds:7.1f} s  {total / seconds / 1e6:7.1f} MB/s stored "
        f"({step.mb_s:.1f} MB/s plaintext)  node RSS {pulled.peak_rss_mib} MiB "
        f"CPU {pulled.cpu_s} s (sources {src_cpu:.1f} s)  CPU s/GiB {step.cpu_line()}"
    )


def scenario_backfill(b: Bench) -> None:
    """A new, empty node n2 back-fills the whole archive from n1 over loopback (TLS)."""
    timed_backfill(b, "backfill", b.node("n2"), [b.node("n1")])


def scenario_noop(b: Bench) -> None:
    """The cost of a replication round that finds nothing new (n2 pulling from n1)."""
    from noop import measure_noop

    n1, n2 = b.node("n1"), b.node("n2")
    if not n2.running:
        scenario_backfill(b)
    n2.stop()
    proxy = TcpLink(n1.port)
    metrics_port = free_port()
    try:
        n2.peer_add(n1.node_id, f"127.0.0.1:{proxy.port}")
        n2.configure(sync_interval=0.2, metrics_listen=f"127.0.0.1:{metrics_port}")
        n2.start()
        if not n2.snapshots_complete(SNAPSHOTS):
            raise BenchError("noop: n2 is not complete")
        b.say("  samizdat noop round (n2 pulls from n1 every 0.2 s; 10 s) ...")
        cost = measure_noop(metrics_port, proxy.reset, n1.node_id, seconds=10.0, settle=2.0)
    finally:
        n2.stop()
        n2.peer_add(n1)
        n2.configure(sync_interval=0.5)
        proxy.close()
    b.record(
        "samizdat",
        "noop_round",
        rounds=cost.rounds,
        ms_per_round=round(cost.ms_per_round, 2),
        bytes_per_round=round(cost.bytes_per_round),
        store_chunks=n1.store_figures()["chunks_stored"],
    )
    b.say(
        f"           {cost.rounds} rounds: {cost.ms_per_round:.1f} ms and "
        f"{cost.bytes_per_round:.0f} B per round (both directions, TLS included)"
    )
    n2.start()


def scenario_restore3(b: Bench) -> None:
    """Restore v2 from three nodes at once (n1, n2 and n3; n3 back-fills from n1 and n2)."""
    n1, n2, n3 = b.node("n1"), b.node("n2"), b.node("n3")
    if not n2.running:
        scenario_backfill(b)
    if not n3.running:
        timed_backfill(b, "backfill_2_peers", n3, [n1, n2])
    dest = b.run_dir / "restore3-samizdat"
    nodes = [arg for n in (n1, n2, n3) for arg in ("--node", n.address)]
    step, run = b.run_cli(
        "restore3",
        ["restore", "--key", str(b.key_path), "--json", *nodes, str(dest)],
        [n1, n2, n3],
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
    total = stored_bytes(n1)

    def passes() -> int:
        return int(n1.status().scrub.passes_completed)

    b.say(f"  samizdat scrub of n1 ({gen_data.human(total)} stored) ...")
    n1.begin_step()
    deadline = time.perf_counter() + b.args.timeout
    p0 = passes()
    while passes() == p0:  # finish the pass in progress
        if time.perf_counter() > deadline:
            raise BenchError("scrub: no pass completed")
        time.sleep(0.01)
    n1.end_step()
    n1.begin_step(b.profile_path("scrub", n1.name))
    t0 = time.perf_counter()
    while passes() <= p0 + 1:  # time one whole pass
        if time.perf_counter() > deadline:
            raise BenchError("scrub: the timed pass did not complete")
        time.sleep(0.01)
    seconds = time.perf_counter() - t0
    scrubbed = n1.end_step()
    n1.stop()
    n1.configure(scrub_rate_mb=50, scrub_interval=86400)
    n1.start()
    extra: dict[str, object] = {
        "node_cpu_s": scrubbed.cpu_s,
        "node_peak_rss_mib": scrubbed.peak_rss_mib,
        "stored_bytes": total,
    }
    step = Step.measured(
        "samizdat", "scrub", total, seconds, {n1.name: scrubbed.cpu_s}, extra=extra
    )
    b.steps.append(step)
    b.say(
        f"           {seconds:7.2f} s  {step.mb_s:7.1f} MB/s stored bytes re-hashed  "
        f"node CPU {scrubbed.cpu_s} s  CPU s/GiB {step.cpu_line()}"
    )


# ------------------------------------------------------------------------- restic, borg


@dataclass(frozen=True)
class PeerTool:
    """How to drive one comparison tool. In the argument lists and env values, {repo} is the
    repository, {run} the run directory, {dest} the restore target, {name} the push's name
    (v1, v2, v2_again); `push` runs inside the pushed version's tree (so that both restore
    to the target's root)."""

    name: str
    settings: str  # what the comparison uses (printed with the tool's version)
    env: Mapping[str, str]
    version: tuple[str, ...]
    init: tuple[str, ...]
    push: tuple[str, ...]
    restore: tuple[str, ...]  # restores v2 (restic: the latest, v2 again)
    restore_in_dest: bool  # whether `restore` extracts into its working directory
    verify: tuple[str, ...]  # reads and checks every stored byte


PEER_TOOLS = (
    PeerTool(
        name="restic",
        settings="default compression (auto) and encryption; repository on the same disk",
        env={
            "RESTIC_PASSWORD": PASSWORD,
            "RESTIC_REPOSITORY": "{repo}",
            "RESTIC_CACHE_DIR": "{run}/restic-cache",
        },
        version=("version",),
        init=("init", "-q"),
        push=("backup", "-q", "--host", "bench", "."),
        restore=("restore", "-q", "latest", "--target", "{dest}"),
        restore_in_dest=False,
        verify=("check", "-q", "--read-data"),
    ),
    PeerTool(
        name="borg",
        settings="repokey encryption, default compression (lz4) and chunker (2 MiB average)",
        env={
            "BORG_PASSPHRASE": PASSWORD,
            "BORG_BASE_DIR": "{run}/borg-base",
            "BORG_RELOCATED_REPO_ACCESS_IS_OK": "yes",
            "BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK": "yes",
        },
        version=("--version",),
        init=("init", "--encryption=repokey", "{repo}"),
        push=("create", "{repo}::{name}", "."),
        restore=("extract", "{repo}::v2"),
        restore_in_dest=True,
        verify=("check", "--verify-data", "{repo}"),
    ),
)


def ensure_peer_tools() -> None:
    """Install restic and borg with apt-get if missing (as root), else explain."""
    missing = [t.name for t in PEER_TOOLS if not shutil.which(t.name)]
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


@dataclass(frozen=True)
class PeerRepo:
    """One repository of a comparison tool in this run, and its command lines."""

    tool: PeerTool
    repo: Path
    dest: Path  # the restore target
    env: dict[str, str]

    @classmethod
    def make(cls, b: Bench, t: PeerTool, suffix: str = "") -> PeerRepo:
        repo = b.run_dir / f"{t.name}-repo{suffix}"
        dest = b.run_dir / f"restore-{t.name}{suffix}"
        env = dict(b.env, **{k: v.format(**cls._fields(b, repo, dest)) for k, v in t.env.items()})
        return cls(t, repo, dest, env)

    @staticmethod
    def _fields(b: Bench, repo: Path, dest: Path) -> dict[str, str]:
        return {"repo": str(repo), "run": str(b.run_dir), "dest": str(dest)}

    def cmd(self, b: Bench, args: tuple[str, ...], **more: str) -> list[str]:
        fields = self._fields(b, self.repo, self.dest) | more
        return [tool(self.tool.name), *(a.format(**fields) for a in args)]

    def init(self, b: Bench) -> None:
        simple(self.cmd(b, self.tool.init), env=self.env)

    def push(self, b: Bench, name: str, version: str) -> Step:
        """A measured push of `version` under the name `name`, with the repository's growth."""
        before = dir_bytes(self.repo)
        step, _ = b.run_step(
            f"push_{name}",
            self.cmd(b, self.tool.push, name=name),
            nbytes=b.manifest[version]["bytes"],
            tool_name=self.tool.name,
            cwd=b.data / version,
            env=self.env,
            inputs=[b.data / version],
        )
        after = dir_bytes(self.repo)
        step.extra.update(store_disk_bytes=after, new_disk_bytes=after - before)
        return step

    def restore(self, b: Bench) -> Step:
        """A measured restore of v2 into `dest`, compared with v2 (then deleted)."""
        if self.tool.restore_in_dest:
            self.dest.mkdir()
        step, _ = b.run_step(
            "restore",
            self.cmd(b, self.tool.restore),
            nbytes=b.manifest["v2"]["bytes"],
            tool_name=self.tool.name,
            cwd=self.dest if self.tool.restore_in_dest else None,
            env=self.env,
            inputs=[self.repo],
        )
        check_restore(b, step, b.data / "v2", self.dest)
        return step


def run_peer_tool(b: Bench, t: PeerTool) -> None:
    """Push v1, v2 and v2 again, restore v2 (compared with v2), verify, with one tool."""
    r = PeerRepo.make(b, t)
    b.say(f"  {simple(r.cmd(b, t.version), env=r.env).strip()} ({t.settings})")
    r.init(b)
    for name, version in PUSHES:
        r.push(b, name, version)
    r.restore(b)
    v2_bytes = b.manifest["v2"]["bytes"]
    b.run_step("verify", r.cmd(b, t.verify), nbytes=v2_bytes, tool_name=t.name, env=r.env)


def scenario_peers(b: Bench) -> None:
    """restic and borg on the same data: push v1, push v2, restore, full verify."""
    ensure_peer_tools()
    for t in PEER_TOOLS:
        run_peer_tool(b, t)


def scenario_floor(b: Bench) -> None:
    """The native floor (bench/floor.py): the CPU per GiB that the steps' unavoidable work
    costs on this machine, measured on v1 (writes go to the run directory, the file system of
    the restore target). Runs last: its writes and deletions cannot slow another step."""
    import floor

    b.say("  floor: primitives on v1 (read, write, chunk, zstd, BLAKE3, AES-GCM, TLS) ...")
    os.sync()
    result = floor.measure(b.data / "v1", b.run_dir, say=b.say)
    b.record("floor", "floor", **result.as_json())
    b.say(
        f"           {result.seconds} s; CPU s/GiB "
        + " ".join(f"{k} {v:.2f}" for k, v in result.cpu_s_per_gib.items())
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
    "floor": scenario_floor,
}
