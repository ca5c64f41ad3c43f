"""Shared fixtures: archive keys, real node processes, sample trees.

Multi-node tests: use `node_factory` (every node it makes is stopped at teardown, and the
logs of all of them are printed when the test fails).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from samizdat.core.keys import ArchiveKey, save_key
from tests.nodeproc import NodeProcess, dump_logs, run_cli
from tests.trees import build_sample_tree

# No per-example deadline: the suite runs on busy 2-core machines next to node processes.
settings.register_profile("samizdat", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "samizdat"))

# A shell starts background jobs with SIGINT ignored, and an ignored signal stays ignored in
# every child: the CLIs the suite spawns would then shrug off the Ctrl-C tests' SIGINT.
# A handled signal is reset to its default on exec, so take it back here.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session", autouse=True)
def _id_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every CLI run of the suite keeps its push id cache here, not in ~/.cache."""
    path = tmp_path_factory.mktemp("id-cache")
    before = os.environ.get("SAMIZDAT_CACHE_DIR")
    os.environ["SAMIZDAT_CACHE_DIR"] = str(path)
    yield path
    if before is None:
        os.environ.pop("SAMIZDAT_CACHE_DIR", None)
    else:
        os.environ["SAMIZDAT_CACHE_DIR"] = before


@dataclass(frozen=True)
class KeyFile:
    """An archive key on disk, as the CLI takes it (`--key path`)."""

    path: Path
    key: ArchiveKey

    @property
    def archive_id(self) -> str:
        return self.key.archive_id.hex()

    def __fspath__(self) -> str:
        return str(self.path)


def make_key_file(path: Path) -> KeyFile:
    key = ArchiveKey.generate()
    save_key(key, path)
    return KeyFile(path, key)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def _failed(request: pytest.FixtureRequest) -> bool:
    return any(
        getattr(request.node, f"rep_{w}", None) is not None
        and getattr(request.node, f"rep_{w}").failed
        for w in ("setup", "call")
    )


@pytest.fixture
def archive_key(tmp_path: Path) -> KeyFile:
    """A fresh archive key file (no passphrase)."""
    return make_key_file(tmp_path / "archive.key")


@pytest.fixture
def other_key(tmp_path: Path) -> KeyFile:
    """A second, unrelated archive key file."""
    return make_key_file(tmp_path / "other.key")


@pytest.fixture
def node_factory(
    tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[..., NodeProcess]]:
    """make(name="n1", *, host=[archive ids], start=True, jurisdiction="") -> NodeProcess."""
    nodes: list[NodeProcess] = []

    def make(
        name: str = "n1",
        *,
        host: list[str] | tuple[str, ...] = (),
        start: bool = True,
        jurisdiction: str = "",
    ) -> NodeProcess:
        node = NodeProcess(tmp_path / "nodes" / name, jurisdiction=jurisdiction)
        node.directory.parent.mkdir(parents=True, exist_ok=True)
        nodes.append(node)
        node.init()
        for archive_id in host:
            node.host(archive_id)
        if start:
            node.start()
        return node

    yield make
    errors = []
    for node in nodes:
        try:
            node.stop()
        except Exception as e:  # keep stopping the others
            errors.append(e)
            node.kill()
    if _failed(request) or errors:
        dump_logs(nodes)
    if errors:
        raise errors[0]


@pytest.fixture
def node(node_factory: Callable[..., NodeProcess], archive_key: KeyFile) -> NodeProcess:
    """A running node (TLS, free loopback port) that hosts `archive_key`'s archive."""
    return node_factory("n1", host=[archive_key.archive_id])


@pytest.fixture
def first_and_fresh(
    node_factory: Callable[..., NodeProcess], archive_key: KeyFile
) -> tuple[NodeProcess, NodeProcess]:
    """Two running nodes that host `archive_key`'s archive and are not peers: push to the
    first, then see what a push to the fresh one (which holds nothing) does."""
    return node_factory("first", host=[archive_key.archive_id]), node_factory(
        "fresh", host=[archive_key.archive_id]
    )


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """tmp_path/outside, next to a restore's destination: it must stay exactly as it is."""
    d = tmp_path / "outside"
    d.mkdir()
    (d / "sentinel.txt").write_bytes(b"original\n")
    return d


@pytest.fixture
def sample_tree(tmp_path: Path) -> Path:
    """A source tree with non-ASCII names, symlinks, empty dirs, modes and ns mtimes."""
    return build_sample_tree(tmp_path / "src")


@pytest.fixture
def cli(tmp_path: Path) -> Callable[..., tuple[int, str, str]]:
    """run_cli with cwd = tmp_path; returns (exit code, stdout, stderr)."""

    def run(*args: str | os.PathLike[str], **kw: object) -> tuple[int, str, str]:
        kw.setdefault("cwd", tmp_path)
        return run_cli(*args, **kw)  # type: ignore[arg-type]

    return run
