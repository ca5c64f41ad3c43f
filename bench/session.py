"""One bench run: its data, nodes and measured steps.

A `Step` is one measured operation of one tool. Besides wall time and MB/s it carries the CPU
seconds of every process that worked in it, `cpu_by_process` ("cli" for the measured command,
be it the samizdat CLI, restic, borg or cp; each node by its name, n1, n2 ...), and the same
per GiB of the step's bytes in `cpu_s_per_gib` (plus "total"): CPU time is far steadier than
wall time on a shared machine.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import gen_data
from conditions import Conditions, cached_fraction, drain_writeback, warm
from harness import (
    BenchNode,
    GiB,
    MiB,
    Run,
    Sampler,
    busy_cpu_seconds,
    other_load,
    py_spy_record,
    run_measured,
    simple,
    tool,
)

CLI = "cli"  # the key of the measured command in Step.cpu_by_process


@dataclass
class Step:
    tool: str
    name: str
    plaintext_bytes: int  # the bytes MB/s and CPU-s/GiB are per (stored bytes for scrub)
    seconds: float
    mb_s: float
    cpu_s: float  # the measured command's CPU (user + system); 0 for node-only steps
    peak_rss_mib: float  # the measured command's peak RSS
    extra: dict[str, object] = field(default_factory=dict)
    cpu_by_process: dict[str, float] = field(default_factory=dict)
    cpu_s_per_gib: dict[str, float] = field(default_factory=dict)

    @classmethod
    def measured(
        cls,
        tool_name: str,
        name: str,
        nbytes: int,
        seconds: float,
        cpu_by_process: dict[str, float],
        peak_rss_mib: float = 0.0,
        extra: dict[str, object] | None = None,
    ) -> Step:
        """A step from its figures: MB/s and CPU-s per GiB derived from `nbytes`."""
        per_gib: dict[str, float] = {}
        if nbytes:
            gib = nbytes / GiB
            per_gib = {p: round(cpu / gib, 2) for p, cpu in cpu_by_process.items()}
            per_gib["total"] = round(sum(cpu_by_process.values()) / gib, 2)
        return cls(
            tool_name,
            name,
            nbytes,
            round(seconds, 2),
            round(nbytes / seconds / 1e6, 1) if nbytes and seconds else 0.0,
            round(cpu_by_process.get(CLI, 0.0), 2),
            round(peak_rss_mib, 1),
            extra or {},
            {p: round(cpu, 2) for p, cpu in cpu_by_process.items()},
            per_gib,
        )

    def cpu_line(self) -> str:
        """CPU-s/GiB per process, e.g. `cli 3.1 n1 2.9`."""
        return " ".join(f"{p} {v:.1f}" for p, v in self.cpu_s_per_gib.items() if p != "total")


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.workdir: Path = args.workdir
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        self.run_dir = self.workdir / f"run-{stamp}-{os.getpid()}"
        self.sampler = Sampler(args.sample_interval)
        self.nodes: dict[str, BenchNode] = {}
        self.steps: list[Step] = []
        self.notes: list[str] = []
        self.manifest: dict = {}
        self.data: Path = Path()
        self.key_path = self.run_dir / "archive.key"
        self.archive_id = ""
        self.profile_dir: Path | None = args.profile
        self.loadavg = [round(x, 2) for x in os.getloadavg()]
        self.env = dict(os.environ)
        self.env.pop("SAMIZDAT_PASSPHRASE", None)
        # The push id cache of this run (like restic's cache), not the user's.
        self.env["SAMIZDAT_CACHE_DIR"] = str(self.run_dir / "id-cache")

    def node(self, name: str) -> BenchNode:
        """The node called `name` in this run (created, not yet initialised, on first use)."""
        if name not in self.nodes:
            self.nodes[name] = BenchNode(self.run_dir / name, self.sampler)
        return self.nodes[name]

    def say(self, text: str) -> None:
        print(text, flush=True)

    def profile_path(self, step: str, process: str) -> Path | None:
        """Where py-spy writes the profile of `process` in `step` (None without --profile)."""
        if self.profile_dir is None:
            return None
        self.profile_dir.mkdir(parents=True, exist_ok=True)
        return self.profile_dir / f"{step}-{process}.txt"

    # measured steps ------------------------------------------------------------------

    def run_cli(
        self,
        name: str,
        args: list[str],
        nodes: Sequence[BenchNode] = (),
        nbytes: int = 0,
        inputs: Sequence[Path] = (),
    ) -> tuple[Step, Run]:
        """One measured `samizdat` command, with the CPU and RSS of `nodes` during it."""
        return self.run_step(
            name, [tool("samizdat"), *args], nodes=nodes, nbytes=nbytes, inputs=inputs
        )

    def run_step(
        self,
        name: str,
        cmd: list[str],
        *,
        nodes: Sequence[BenchNode] = (),
        nbytes: int = 0,
        tool_name: str = "samizdat",
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        inputs: Sequence[Path] = (),
    ) -> tuple[Step, Run]:
        """Run `cmd` as a measured step of `tool_name` over `nbytes` of plaintext; `inputs`
        are the files or trees it reads (their page-cache share is recorded)."""
        # The input in the page cache, as the bench assumes: another tool may have evicted
        # it (borg drops the cache of what it reads and writes), or the rest of the machine.
        share = cached_fraction(inputs) if inputs else None
        warmed, warm_s = (0, 0.0) if self.args.no_warm else warm(inputs, share)
        if tool_name == "samizdat" and (cli_profile := self.profile_path(name, "cli")):
            cmd = [*py_spy_record(cli_profile), "--", *cmd]
        for node in nodes:
            node.begin_step(self.profile_path(name, node.name) if tool_name == "samizdat" else None)
        self.wait_quiet()
        # Dirty pages of the last step are not written back during this one: sync (it waits
        # for the write-back), and with --drain wait up to that many seconds until Dirty +
        # Writeback is below 16 MiB (the rest of the machine dirties pages all the while).
        sync_s, _ = drain_writeback(self.args.drain)
        self.say(f"  {tool_name:<8} {name} ...")
        conditions = Conditions(share).begin()
        busy0 = busy_cpu_seconds()
        r = run_measured(cmd, self.sampler, cwd=cwd, env=env or self.env, timeout=self.args.timeout)
        busy = busy_cpu_seconds() - busy0
        cpu = {CLI: r.cpu_seconds}
        extra: dict[str, object] = {
            "conditions": conditions.end()
            | {"sync_s": sync_s, "warmed_mib": round(warmed / MiB), "warm_s": warm_s}
        }
        if nodes:
            figures = {node.name: node.end_step() for node in nodes}
            cpu |= {n: f.cpu_s for n, f in figures.items()}
            extra["node_cpu_s"] = round(sum(f.cpu_s for f in figures.values()), 2)
            extra["node_peak_rss_mib"] = max(f.peak_rss_mib for f in figures.values())
        extra["other_cpu_s"] = self.others(name, tool_name, busy - sum(cpu.values()), r.seconds)
        step = Step.measured(tool_name, name, nbytes, r.seconds, cpu, r.peak_rss / MiB, extra)
        self.steps.append(step)
        node_part = (
            f"  node RSS {extra['node_peak_rss_mib']} MiB CPU {extra['node_cpu_s']} s"
            if nodes
            else ""
        )
        self.say(
            f"           {r.seconds:7.1f} s  {step.mb_s:7.1f} MB/s  CPU {r.cpu_seconds:6.1f} s  "
            f"RSS {step.peak_rss_mib:6.1f} MiB{node_part}  CPU s/GiB {step.cpu_line()}  "
            f"(others {extra['other_cpu_s']} CPU s)"
        )
        return step, r

    def others(self, name: str, tool_name: str, other_cpu: float, seconds: float) -> float:
        """CPU the rest of the machine used during a step (other processes, writeback): on a
        shared machine this is what makes wall-clock figures unreliable. Noted when high."""
        other = max(0.0, other_cpu)
        if seconds and other / seconds > 0.25:
            self.notes.append(
                f"{tool_name} {name}: the rest of the machine kept "
                f"{other / seconds:.1f} cores busy during the step"
            )
        return round(other, 1)

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
        step = self.get(tool_name, name)
        if step is None:
            self.steps.append(Step.measured(tool_name, name, 0, 0.0, {}, extra=dict(extra)))
        else:
            step.extra.update(extra)

    def get(self, tool_name: str, name: str) -> Step | None:
        return next((s for s in self.steps if s.tool == tool_name and s.name == name), None)

    # lifecycle -----------------------------------------------------------------------

    def setup(self) -> None:
        """Generate (or reuse) the data, make an archive key, start node n1 hosting it."""
        out = self.args.data or gen_data.default_out(self.args.size, self.args.seed, self.workdir)
        self.manifest = gen_data.generate(self.args.size, self.args.seed, out)
        self.data = out
        self.run_dir.mkdir(parents=True)
        self.sampler.start()
        self.archive_id = simple(
            [tool("samizdat"), "key", "new", str(self.key_path)], env=self.env
        ).strip()
        n1 = self.node("n1").init()
        n1.host(self.archive_id)
        n1.start()
        self.say(f"node n1 {n1.address} (TLS, pinned) in {n1.directory}")

    def teardown(self) -> None:
        for n in self.nodes.values():
            try:
                n.stop()
            except Exception as e:  # keep stopping the others
                print(f"warning: stopping node {n.name}: {e}", file=sys.stderr)
        self.sampler.stop()
        if not self.args.keep and self.run_dir.exists():
            shutil.rmtree(self.run_dir, ignore_errors=True)
