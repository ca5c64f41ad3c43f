"""The operator's install path: a wheel built from the repository, installed with its
dependencies into a fresh virtual environment outside the repository, runs a node and a
push/restore round trip with nothing else from the repository (no editable install, no
source tree on sys.path, working directory elsewhere)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import make_key_file
from tests.nodeproc import NodeProcess, run_cli
from tests.trees import assert_same_tree, build_sample_tree

pytestmark = pytest.mark.timeout(300)

REPO = Path(__file__).parents[2]
# What a release tarball carries (the package folders and the build configuration).
SOURCE_PARTS = ["pyproject.toml", "README.md", "core", "rpc", "store", "server", "client", "proto"]


def _run(*args: str | os.PathLike[str], cwd: Path, timeout: float = 240) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    proc = subprocess.run(
        [os.fspath(a) for a in args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, f"{args} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def build_wheel(dest: Path, scratch: Path) -> Path:
    """Build the wheel from a copy of the sources (setuptools' build/ stays out of the repo)."""
    src = scratch / "src"
    for part in SOURCE_PARTS:
        origin = REPO / part
        if origin.is_dir():
            shutil.copytree(origin, src / part, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            src.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, src / part)
    pip = [sys.executable, "-m", "pip"]
    _run(*pip, "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", dest, src, cwd=scratch)
    (wheel,) = dest.glob("samizdat-*.whl")
    return wheel


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """bin/ of a fresh venv where the wheel and its dependencies were installed with pip."""
    root = tmp_path_factory.mktemp("install")
    wheel = build_wheel(root / "dist", root / "build")
    venv = root / "venv"
    _run(sys.executable, "-m", "venv", venv, cwd=root)
    _run(venv / "bin" / "python", "-m", "pip", "install", "-q", wheel, cwd=root)
    return venv / "bin"


def test_wheel_carries_the_generated_protobuf_code_and_versions(installed: Path) -> None:
    outside = installed.parent.parent
    where = _run(
        installed / "python",
        "-c",
        "import samizdat.core, samizdat.v1.node_pb2_grpc as g, importlib.metadata as m;"
        "print(samizdat.core.__file__); print(g.__file__); print(m.version('samizdat'))",
        cwd=outside,
    ).split()
    assert all(Path(p).is_relative_to(installed.parent) for p in where[:2]), where
    version = where[2]
    for program in ("samizdat", "samizdat-node"):
        assert _run(installed / program, "--version", cwd=outside).strip() == (
            f"{program}, version {version}"
        )


def test_installed_node_and_cli_push_and_restore(installed: Path, tmp_path: Path) -> None:
    work = tmp_path / "elsewhere"
    work.mkdir()
    key = make_key_file(work / "archive.key")
    node = NodeProcess(work / "node", bin_dir=installed).init()
    node.host(key.archive_id)
    tree = build_sample_tree(work / "evidence", big_size=1 << 20)
    try:
        node.start()
        code, out, err = run_cli(
            "push", "--key", key.path, "--node", node.address, tree, cwd=work, bin_dir=installed
        )
        assert code == 0, err
        assert "stored on" in out
        code, _out, err = run_cli(
            "restore", "--key", key.path, "--node", node.address, work / "restored",
            cwd=work, bin_dir=installed,
        )  # fmt: skip
        assert code == 0, err
        assert_same_tree(tree, work / "restored")
    finally:
        assert node.stop() == 0, node.logs()
