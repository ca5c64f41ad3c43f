"""Options the CLI's commands share, and what they resolve to.

Each decorator declares one option (or one group that always goes together) with its help
text, so that a command's `--help` reads the same wherever the option appears; `--json` is
`jsonout.option`. `open_key` reads `--key`, `node_clients` turns `--node`/`--cluster` into
clients (through `cluster.named_nodes`, the one reading of those two options).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from samizdat.client.cluster import NO_NODE, named_nodes
from samizdat.core.errors import UsageError
from samizdat.core.keys import ArchiveKey, load_key, read_key_file
from samizdat.rpc.remote import NodeClient

F = TypeVar("F", bound=Callable[..., Any])

EPILOG = (
    "Exit codes: 0 success, 1 failure or degraded, 2 usage or connection error, "
    "130 interrupted (Ctrl-C)."
)
NODE_HELP = "Node as NODE_ID@HOST:PORT (TLS) or HOST:PORT (loopback)"
CLUSTER_HELP = "Cluster file (TOML) naming the nodes"


def _stack(*decorators: Callable[[F], F]) -> Callable[[F], F]:
    """Apply `decorators` as if written one above the other, first on top."""

    def apply(f: F) -> F:
        for d in reversed(decorators):
            f = d(f)
        return f

    return apply


def node_options(node_help: str = NODE_HELP, cluster_help: str = CLUSTER_HELP) -> Callable[[F], F]:
    """`--node N` (repeatable; parameter `nodes`) and `--cluster FILE` (parameter `cluster`):
    the nodes a command talks to. The help texts say what the nodes are for."""
    return _stack(
        click.option("--node", "nodes", multiple=True, metavar="N", help=node_help),
        click.option("--cluster", type=click.Path(path_type=Path), default=None, help=cluster_help),
    )


key_option = click.option(
    "--key", "key_path", type=click.Path(path_type=Path), required=True, help="Archive key file"
)
store_option = click.option(
    "--store",
    "stores",
    multiple=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="A copy of a node's data directory (or node directory) to read from, offline",
)
snapshot_option = click.option(
    "--snapshot", default="latest", show_default=True, help="Snapshot id prefix, or 'latest'"
)
record_out_option = click.option(
    "--out",
    "record_out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Also write the signed record(s) to this file (for `samizdat key publish`)",
)


def source_options(f: F) -> F:
    """Where chunks are read from (ls, restore, verify): `--key`, the nodes and `--store`."""
    return _stack(key_option, node_options(), store_option)(f)


def passphrase_flag(help_text: str) -> Callable[[F], F]:
    """`--passphrase` (parameter `ask`): ask for a passphrase on the terminal."""
    return click.option("--passphrase", "ask", is_flag=True, help=help_text)


def env_passphrase() -> str | None:
    """The key file passphrase from SAMIZDAT_PASSPHRASE, if set."""
    return os.environ.get("SAMIZDAT_PASSPHRASE") or None


def open_key(path: Path) -> ArchiveKey:
    """Load the key file given with `--key` (asking for its passphrase on a terminal)."""
    from samizdat.v1 import records_pb2 as pb

    kf = read_key_file(path)
    passphrase = env_passphrase()
    if kf.kdf == pb.KDF_ARGON2ID and passphrase is None and sys.stdin.isatty():
        passphrase = click.prompt("passphrase", hide_input=True)
    return load_key(path, passphrase)


def node_clients(
    nodes: Sequence[str],
    cluster: Path | None,
    key: ArchiveKey | None = None,
    *,
    required: bool = True,
) -> list[NodeClient]:
    """A client for each node of `--node` and `--cluster`; UsageError if none was named and
    `required`."""
    named, _ = named_nodes(nodes, cluster)
    if required and not named:
        raise UsageError(NO_NODE)
    return [NodeClient(n.address, key) for n in named]
