"""What the machine was doing around a measured step: the suspects of run-to-run spread.

`Conditions(input_cached).begin()` before a step and `.end()` after it record, machine-wide:

- steal: CPU seconds the hypervisor gave other tenants while we wanted them (/proc/stat
  `steal`; invisible in a process's own CPU time, yet it stretches wall time),
- iowait: CPU seconds idle while I/O was outstanding (/proc/stat `iowait`),
- Dirty + Writeback at the start (/proc/meminfo): pages of an earlier step still to be
  written back, which the kernel's flusher writes during this step,
- how much of the step's input was in the page cache at the start (mincore(2) over every
  file of the input, mapped read-only: a query that changes nothing, unlike reading),
- Cached at the start and its change (/proc/meminfo),
- the mean CPU clock (/proc/cpuinfo `cpu MHz`; fixed on most virtual machines).

The parsers take the files' text so that tests can feed them fixed input.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import mmap
import os
import stat
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

MiB = 1 << 20
STAT_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def parse_proc_stat(text: str) -> dict[str, float]:
    """Machine-wide CPU seconds by state from /proc/stat's `cpu ` line (all cores summed)."""
    for line in text.splitlines():
        if line.startswith("cpu "):
            values = [int(v) for v in line.split()[1:]]
            values += [0] * (len(STAT_FIELDS) - len(values))
            return {name: values[i] / TICK for i, name in enumerate(STAT_FIELDS)}
    raise ValueError("no `cpu ` line in /proc/stat")


def parse_meminfo(text: str) -> dict[str, int]:
    """/proc/meminfo as {field: bytes} (values given in kB are converted)."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        parts = rest.split()
        if not parts:
            continue
        value = int(parts[0])
        out[name.strip()] = value * 1024 if parts[1:] == ["kB"] else value
    return out


def parse_cpu_mhz(text: str) -> float:
    """Mean `cpu MHz` over the cores in /proc/cpuinfo (0.0 if the kernel does not say)."""
    mhz = [float(line.split(":", 1)[1]) for line in text.splitlines() if line.startswith("cpu MHz")]
    return round(sum(mhz) / len(mhz), 1) if mhz else 0.0


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def proc_stat() -> dict[str, float]:
    return parse_proc_stat(_read("/proc/stat"))


def meminfo() -> dict[str, int]:
    return parse_meminfo(_read("/proc/meminfo"))


def dirty_bytes(info: dict[str, int] | None = None) -> int:
    """Dirty + Writeback: bytes waiting for, or in, write-back to disk."""
    info = meminfo() if info is None else info
    return info.get("Dirty", 0) + info.get("Writeback", 0)


_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = (
    ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long
)  # fmt: skip
_libc.munmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t)
_libc.mincore.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_ubyte))
PAGE = mmap.PAGESIZE
MAP_FAILED = ctypes.c_void_p(-1).value
LOW_BIT = bytes(i & 1 for i in range(256))  # mincore: bit 0 = resident, the rest reserved


def resident_bytes(path: Path | str, size: int | None = None) -> tuple[int, int]:
    """(bytes of `path` in the page cache, its size): mincore(2) over a read-only shared
    mapping of the file, which reads nothing and changes nothing."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return 0, 0
    try:
        size = os.fstat(fd).st_size if size is None else size
        if size == 0:
            return 0, 0
        addr = _libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        if addr in (None, MAP_FAILED):
            return 0, size
        try:
            vec = (ctypes.c_ubyte * ((size + PAGE - 1) // PAGE))()
            if _libc.mincore(addr, size, vec) != 0:
                return 0, size
            resident = bytes(vec).translate(LOW_BIT).count(1)
        finally:
            _libc.munmap(addr, size)
        return min(size, resident * PAGE), size
    finally:
        os.close(fd)


def files_under(roots: Iterable[Path]) -> Iterator[tuple[str, int]]:
    """(path, size) of every regular file under `roots` (symlinks not followed)."""
    stack = [str(r) for r in roots]
    while stack:
        top = stack.pop()
        try:
            st = os.lstat(top)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode):
            yield top, st.st_size
            continue
        if not stat.S_ISDIR(st.st_mode):
            continue
        try:
            entries = list(os.scandir(top))
        except OSError:
            continue
        for e in entries:
            try:
                if e.is_dir(follow_symlinks=False):
                    stack.append(e.path)
                elif e.is_file(follow_symlinks=False):
                    yield e.path, e.stat(follow_symlinks=False).st_size
            except OSError:
                continue


def cached_fraction(roots: Sequence[Path]) -> float | None:
    """Share (0..1) of the bytes of every regular file under `roots` in the page cache; None
    if there are no bytes."""
    resident = total = 0
    for path, size in files_under(roots):
        if size:
            r, size = resident_bytes(path, size)
            resident += r
            total += size
    return round(resident / total, 3) if total else None


def warm(roots: Sequence[Path], share: float | None, below: float = 0.99) -> tuple[int, float]:
    """Read every file under `roots` (into a reused buffer, discarded) if `share` (their
    cached_fraction) is below `below`, so that a step finds its input in the page cache.
    Returns (bytes read, seconds)."""
    if share is None or share >= below:
        return 0, 0.0
    t0 = time.monotonic()
    buf = memoryview(bytearray(8 * MiB))
    total = 0
    for path, _ in files_under(roots):
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue
        try:
            while n := os.readv(fd, [buf]):
                total += n
        finally:
            os.close(fd)
    return total, round(time.monotonic() - t0, 2)


def drain_writeback(deadline_s: float, below: int = 16 * MiB) -> tuple[float, int]:
    """sync(2), then wait until Dirty + Writeback < `below` or `deadline_s` passed. Returns
    (seconds spent, Dirty + Writeback at the end)."""
    t0 = time.monotonic()
    os.sync()
    dirty = dirty_bytes()
    while dirty >= below and time.monotonic() - t0 < deadline_s:
        time.sleep(0.05)
        dirty = dirty_bytes()
    return round(time.monotonic() - t0, 2), dirty


@dataclass
class Conditions:
    """Machine conditions over one step (see the module docstring). Use begin() then end()."""

    input_cached: float | None = None  # the input's cached_fraction, measured by the caller
    _stat0: dict[str, float] | None = None
    _info0: dict[str, int] | None = None

    def begin(self) -> Conditions:
        self._info0 = meminfo()
        self._stat0 = proc_stat()
        return self

    def end(self) -> dict[str, object]:
        """The figures of the step: CPU seconds of steal and iowait (all cores), MiB of
        Dirty + Writeback and Cached at the start, the change of Cached, the input's cached
        share, the mean CPU clock."""
        assert self._stat0 is not None and self._info0 is not None, "begin() first"
        stat1, info1 = proc_stat(), meminfo()
        delta = {k: stat1[k] - self._stat0[k] for k in STAT_FIELDS}
        return {
            "steal_s": round(delta["steal"], 2),
            "iowait_s": round(delta["iowait"], 2),
            "dirty_start_mib": round(dirty_bytes(self._info0) / MiB, 1),
            "cached_start_mib": round(self._info0.get("Cached", 0) / MiB),
            "cached_change_mib": round(
                (info1.get("Cached", 0) - self._info0.get("Cached", 0)) / MiB
            ),
            "input_cached": self.input_cached,
            "cpu_mhz": parse_cpu_mhz(_read("/proc/cpuinfo")),
        }
