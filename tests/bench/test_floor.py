"""bench/floor.py's arithmetic and bench/conditions.py's /proc parsing (no timing asserted),
plus one small real run of the floor's primitives."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import conditions  # noqa: E402
import floor  # noqa: E402

PRIMITIVES = {
    "read_tree": 0.2,
    "write_tree": 4.0,
    "write_stream": 2.0,
    "read_stream": 0.1,
    "chunk": 1.5,
    "zstd_compress": 0.5,
    "zstd_decompress": 0.1,
    "blake3": 0.3,
    "aes_encrypt": 0.3,
    "aes_decrypt": 0.25,
    "tls_send": 0.4,
    "tls_recv": 0.8,
}


def test_step_floor_sums_each_end_with_the_stored_ratio() -> None:
    steps = floor.step_floor(PRIMITIVES, stored_ratio=0.5, cores=2)
    push, restore = steps["push"], steps["restore"]
    # client: read + chunk + zstd + r * (2 blake3 + aes + tls send)
    assert push.client == pytest.approx(0.2 + 1.5 + 0.5 + 0.5 * (2 * 0.3 + 0.3 + 0.4))
    assert push.node == pytest.approx(0.5 * (0.8 + 0.3 + 2.0))
    assert restore.node == pytest.approx(0.5 * (0.1 + 0.3 + 0.4))
    assert restore.client == pytest.approx(0.5 * (0.8 + 0.3 + 0.25) + 0.1 + 4.0)
    for s in (push, restore):
        assert s.total == pytest.approx(s.client + s.node)
        # perfectly parallel over 2 cores: a GiB takes total / 2 seconds
        assert s.best_mb_s == pytest.approx((1 << 30) / (s.total / 2) / 1e6, rel=1e-3)


def test_step_floor_needs_every_primitive() -> None:
    with pytest.raises(KeyError):
        floor.step_floor({k: v for k, v in PRIMITIVES.items() if k != "tls_recv"}, 1.0, 2)


def test_ceiling_ratio() -> None:
    assert floor.ceiling_ratio(450.0, 500.0) == 0.9
    assert floor.ceiling_ratio(450.0, 0.0) == 0.0


def test_every_kth_by_size_keeps_the_mix_of_sizes() -> None:
    files = [(Path(f"f{i}"), size) for i, size in enumerate([1, 1000, 2, 2000, 3, 3000, 4, 4000])]
    total = sum(s for _, s in files)
    assert floor.every_kth_by_size(files, total) == sorted(files, key=lambda f: f[1])
    half = floor.every_kth_by_size(files, total // 2)
    assert len(half) == 4
    assert {s for _, s in half} & {1, 2, 3, 4} and {s for _, s in half} & {1000, 2000, 3000, 4000}


STAT = """cpu  3348546 10 892811 1818048 45257 0 25130 3849 0 0
cpu0 1674273 5 446405 909024 22628 0 12565 1924 0 0
intr 1 2 3
"""


def test_parse_proc_stat() -> None:
    t = conditions.parse_proc_stat(STAT)
    tick = conditions.TICK
    assert t["user"] == 3348546 / tick
    assert t["nice"] == 10 / tick
    assert t["iowait"] == 45257 / tick
    assert t["steal"] == 3849 / tick
    with pytest.raises(ValueError):
        conditions.parse_proc_stat("intr 1 2 3\n")


def test_parse_proc_stat_of_an_old_kernel_without_steal() -> None:
    t = conditions.parse_proc_stat("cpu  1 2 3 4 5 6 7\n")
    assert t["softirq"] == 7 / conditions.TICK and t["steal"] == 0


MEMINFO = """MemTotal:       32768000 kB
Cached:          9229044 kB
Dirty:            234040 kB
Writeback:          1024 kB
HugePages_Total:       0
"""


def test_parse_meminfo_and_dirty_bytes() -> None:
    m = conditions.parse_meminfo(MEMINFO)
    assert m["Cached"] == 9229044 * 1024
    assert m["HugePages_Total"] == 0
    assert conditions.dirty_bytes(m) == (234040 + 1024) * 1024


def test_parse_cpu_mhz() -> None:
    text = "processor\t: 0\ncpu MHz\t\t: 2600.000\nprocessor\t: 1\ncpu MHz\t\t: 2400.000\n"
    assert conditions.parse_cpu_mhz(text) == 2500.0
    assert conditions.parse_cpu_mhz("processor : 0\n") == 0.0


def test_resident_bytes_and_cached_fraction(tmp_path: Path) -> None:
    data = tmp_path / "a"
    data.write_bytes(os.urandom(3 * conditions.PAGE + 5))
    (tmp_path / "empty").touch()
    resident, size = conditions.resident_bytes(data)
    assert sorted(conditions.files_under([tmp_path])) == [
        (str(data), size),
        (str(tmp_path / "empty"), 0),
    ]
    assert size == 3 * conditions.PAGE + 5
    assert 0 <= resident <= size
    share = conditions.cached_fraction([tmp_path])
    assert share is not None and 0.0 <= share <= 1.0
    assert conditions.cached_fraction([tmp_path / "empty"]) is None
    assert conditions.resident_bytes(tmp_path / "missing") == (0, 0)


def test_conditions_of_a_step(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x" * 10000)
    c = conditions.Conditions(conditions.cached_fraction([tmp_path])).begin()
    figures = c.end()
    assert {"steal_s", "iowait_s", "dirty_start_mib", "input_cached", "cpu_mhz"} <= set(figures)
    assert float(figures["steal_s"]) >= 0  # type: ignore[arg-type]


def test_measure_on_a_small_tree(tmp_path: Path) -> None:
    """Every primitive runs on real data through the product's libraries (small sizes)."""
    tree = tmp_path / "v1"
    (tree / "d").mkdir(parents=True)
    (tree / "d" / "random").write_bytes(os.urandom(3 << 20))
    (tree / "text").write_bytes(b"samizdat floor " * 50_000)
    (tree / "tiny").write_bytes(b"x")
    result = floor.measure(
        tree, tmp_path / "w", sample_bytes=4 << 20, write_bytes=4 << 20, tls_bytes=2 << 20
    )
    assert set(result.cpu_s_per_gib) == set(PRIMITIVES)
    assert all(v >= 0 for v in result.cpu_s_per_gib.values())
    assert result.bytes_measured["tls_recv"] == 2 << 20
    assert result.bytes_measured["read_tree"] == (3 << 20) + 15 * 50_000 + 1
    assert 0.3 < result.stored_ratio < 1.1  # the text compresses, the random bytes do not
    assert result.tls_cipher == floor.TLS_SUITE
    assert set(result.steps) == {"push", "restore"}
    assert not any((tmp_path / "w").iterdir())  # the writes were deleted


def test_repeat_summary_medians_and_ratios_within_rounds() -> None:
    import repeat
    from session import Step

    def step(tool: str, mb_s: float, cpu: float, k: int | None) -> Step:
        s = Step.measured(tool, "push_v1", 1 << 30, (1 << 30) / mb_s / 1e6, {"cli": cpu})
        if k is not None:
            s.extra["round"] = k
        return s

    steps = [
        step("samizdat", 100.0, 5.0, None),  # round 1 carries no round
        step("restic", 50.0, 4.0, None),
        step("samizdat", 300.0, 3.0, 2),
        step("restic", 100.0, 6.0, 2),
        step("samizdat", 200.0, 4.0, 3),
        step("restic", 200.0, 5.0, 3),
    ]
    summary = repeat.summarize(steps)["push_v1"]
    ours, theirs = summary["samizdat"], summary["restic"]
    assert ours["rounds"] == [1, 2, 3]
    assert ours["mb_s"] == {"median": 200.0, "min": 100.0, "max": 300.0, "n": 3}
    assert ours["cpu_s_per_gib"]["total"]["median"] == 4.0  # type: ignore[index]
    # ratios per round: 2.0, 3.0, 1.0 (not the ratio of the medians, 200/100)
    assert theirs["ratio"] == {"median": 2.0, "min": 1.0, "max": 3.0, "n": 3}
    assert "ratio" not in ours
    assert repeat.spread([]) is None


def test_warm_reads_an_evicted_input_and_leaves_a_cached_one(tmp_path: Path) -> None:
    f = tmp_path / "input"
    f.write_bytes(os.urandom(1 << 20))
    fd = os.open(f, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)  # what borg does to what it reads
    finally:
        os.close(fd)
    share = conditions.cached_fraction([tmp_path])
    read, _ = conditions.warm([tmp_path], share)
    assert share is not None
    assert read == (0 if share >= 0.99 else 1 << 20)  # tmpfs keeps the pages
    assert conditions.warm([tmp_path], 1.0) == (0, 0.0)
    assert conditions.warm([tmp_path / "missing"], None) == (0, 0.0)


def test_repeat_summary_sums_each_round_s_own_nodes() -> None:
    import repeat
    from session import Step

    steps = [
        Step.measured("samizdat", "restore", 1 << 30, 2.0, {"cli": 4.0, "n1": 2.0}),
        Step.measured("samizdat", "restore", 1 << 30, 2.0, {"cli": 3.0, "r2": 3.0}),
    ]
    steps[1].extra["round"] = 2
    cpu = repeat.summarize(steps)["restore"]["samizdat"]["cpu_s_per_gib"]
    assert cpu["nodes"] == {"median": 2.5, "min": 2.0, "max": 3.0, "n": 2}  # type: ignore[index]
    assert cpu["total"]["median"] == 6.0  # type: ignore[index]
