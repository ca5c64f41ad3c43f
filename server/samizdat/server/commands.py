"""The commands of `samizdat-node`: create, configure and run a storage node (the entry point,
with its Ctrl-C handling, is samizdat.server.cli).

Exit codes: 0 success, 1 runtime failure, 2 usage or configuration error, 130 interrupted.
"""

from __future__ import annotations

import faulthandler
import logging
import os
import signal
import sys
from pathlib import Path

import click
import tomlkit

from samizdat.core.errors import ExitCode, SamizdatError, UsageError
from samizdat.core.ids import ArchiveId, check_node_id
from samizdat.core.printable import printable
from samizdat.rpc.address import split_host_port
from samizdat.server.config import (
    config_path,
    edit_config,
    load_config,
    save_doc,
    write_initial_config,
)
from samizdat.server.identity import create_identity, load_identity


class _Formatter(logging.Formatter):
    """Structured one-line logs (logfmt): ts=ISO-8601 level=... logger=... msg="...". The
    message may hold a peer's words: backslashes and quotes are escaped, and so is every
    character that is not printable (newline, CR, ESC, bidi overrides:
    samizdat.core.printable), so that it can neither start a line of its own, end the quoted
    field early (and add fields of its own), nor act on a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        msg = printable(record.getMessage().replace("\\", "\\\\").replace('"', '\\"'))
        when = self.formatTime(record, "%Y-%m-%dT%H:%M:%S")
        zone = self.formatTime(record, "%z")
        return (
            f"ts={when}.{int(record.msecs):03d}{zone} level={record.levelname.lower()} "
            f'logger={record.name} msg="{msg}"'
        )


def _setup_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter())
    logging.basicConfig(level=level.upper(), handlers=[handler])


def _reload_running(directory: Path) -> None:
    """Send SIGHUP to a node running from `directory`, if any (pid file)."""
    pid_file = directory / "node.pid"
    try:
        pid = int(pid_file.read_text())
        os.kill(pid, signal.SIGHUP)
    except (FileNotFoundError, ValueError, ProcessLookupError, PermissionError):
        pass


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="samizdat", prog_name="samizdat-node")
def cli() -> None:
    """Run a samizdat storage node.

    Exit codes: 0 success, 1 failure, 2 usage or configuration error, 130 interrupted
    (Ctrl-C; `serve` stops cleanly on SIGINT or SIGTERM and exits 0).
    """


@cli.command()
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--listen", default="127.0.0.1:7700", show_default=True, help="HOST:PORT to serve")
@click.option("--jurisdiction", default="", help="Country code of this node, e.g. FR")
@click.option("--name", default=None, help="Node name (default: directory name)")
def init(directory: Path, listen: str, jurisdiction: str, name: str | None) -> None:
    """Create a new node: key pair, certificate and a commented node.toml."""
    split_host_port(listen)
    directory.mkdir(parents=True, exist_ok=True)
    if config_path(directory).exists():
        raise UsageError(f"{directory} already holds a node (node.toml exists)")
    identity = create_identity(directory)
    write_initial_config(directory, name or directory.resolve().name, listen, jurisdiction)
    load_config(directory)
    click.echo(identity.node_id)


@cli.command("id")
@click.argument("directory", type=click.Path(path_type=Path))
def show_id(directory: Path) -> None:
    """Print this node's id (the fingerprint of its key)."""
    click.echo(load_identity(directory).node_id)


@cli.command()
@click.argument("directory", type=click.Path(path_type=Path))
@click.argument("archive_id")
def host(directory: Path, archive_id: str) -> None:
    """Agree to host an archive (by archive id)."""
    archive = ArchiveId.parse(archive_id)
    doc = edit_config(directory)
    hosted = doc.setdefault("hosted_archives", tomlkit.array())
    if archive.hex() not in [str(h) for h in hosted]:
        hosted.append(archive.hex())
        save_doc(directory, doc)
        _reload_running(directory)
    click.echo(f"hosting archive {archive.hex()}")


@cli.group()
def peer() -> None:
    """Manage the peers this node pulls from."""


@peer.command("add")
@click.argument("directory", type=click.Path(path_type=Path))
@click.argument("node_id")
@click.argument("address")
@click.option("--jurisdiction", default="", help="Country code of the peer")
def peer_add(directory: Path, node_id: str, address: str, jurisdiction: str) -> None:
    """Add (or update) a peer by node id and HOST:PORT."""
    check_node_id(node_id)
    split_host_port(address)
    doc = edit_config(directory)
    if node_id in [str(r) for r in doc.get("revoked", [])]:
        raise UsageError(f"node {node_id[:8]} is revoked; remove it from 'revoked' first")
    peers = doc.setdefault("peer", tomlkit.aot())
    for p in peers:
        if p.get("id") == node_id:
            p["address"], p["jurisdiction"] = address, jurisdiction
            break
    else:
        table = tomlkit.table()
        table.update({"id": node_id, "address": address, "jurisdiction": jurisdiction})
        peers.append(table)
    save_doc(directory, doc)
    _reload_running(directory)
    click.echo(f"peer {node_id} at {address}")


@peer.command("revoke")
@click.argument("directory", type=click.Path(path_type=Path))
@click.argument("node_id")
def peer_revoke(directory: Path, node_id: str) -> None:
    """Refuse a node from now on (a seized node): it is removed and listed as revoked."""
    check_node_id(node_id)
    doc = edit_config(directory)
    peers = doc.get("peer")
    if peers is not None:
        keep = [p for p in peers if p.get("id") != node_id]
        doc["peer"] = tomlkit.aot()
        for p in keep:
            doc["peer"].append(p)
    revoked = doc.setdefault("revoked", tomlkit.array())
    if node_id not in [str(r) for r in revoked]:
        revoked.append(node_id)
    save_doc(directory, doc)
    _reload_running(directory)
    click.echo(f"revoked {node_id}")


@cli.command()
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--log-level", default="info", show_default=True)
@click.option(
    "--ready-file",
    type=click.Path(path_type=Path),
    default=None,
    help="Write the bound port to this file once serving",
)
def serve(directory: Path, log_level: str, ready_file: Path | None) -> None:
    """Run the node in the foreground; SIGTERM stops it cleanly, SIGHUP reloads node.toml,
    SIGUSR1 writes every thread's stack to the log (stderr)."""
    from samizdat.core.memory import tune_allocator
    from samizdat.server.node import serve as run

    tune_allocator()
    # Works even when a thread holds the GIL and the node answers nothing else.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    _setup_logging(log_level)
    load_config(directory)  # refuse bad config before anything starts
    pid_file = directory / "node.pid"
    pid_file.write_text(f"{os.getpid()}\n")
    try:
        run(directory, ready_file)
    finally:
        pid_file.unlink(missing_ok=True)
    # The store is closed: leave now. Exiting the interpreter would join every thread, and a
    # thread that a hostile call left waiting must not keep a stopped node alive.
    logging.shutdown()
    os._exit(0)


def run() -> int:
    """Run the command of the command line; return the exit code of the error that stopped
    it (its class decides, samizdat.core.errors), or 0."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return ExitCode.FAILURE
    except click.ClickException as e:
        e.show()
        return UsageError.exit_code
    except SamizdatError as e:
        click.echo(f"error: {printable(str(e))}", err=True)
        return e.exit_code
    except OSError as e:
        click.echo(f"error: {printable(str(e))}", err=True)
        return ExitCode.FAILURE
    return ExitCode.OK
