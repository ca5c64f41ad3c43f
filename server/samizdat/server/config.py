"""Node configuration: one TOML file per node (`node.toml` in the node directory).

`samizdat-node init` writes a commented file; `host`, `peer add` and `peer revoke` edit it in
place (comments kept, via tomlkit). Bad config is refused at start with a message naming the key.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomlkit

from samizdat.core.errors import ConfigError
from samizdat.core.ids import ArchiveId, check_node_id
from samizdat.rpc.address import is_loopback, split_host_port

CONFIG_FILE = "node.toml"

TEMPLATE = """\
# samizdat node configuration. Edit, then restart the node or send it SIGHUP.

# Human-readable name of this node, shown in status output.
name = {name}

# Address the gRPC server listens on. A non-loopback address requires tls = true.
listen = {listen}

# Serve with TLS (certificate node.crt, pinned by clients and peers to this node's id).
tls = true

# Jurisdiction label (ISO 3166 country code) used by replication health.
jurisdiction = {jurisdiction}

# RocksDB data directory, relative to this file's directory.
data_dir = "data"

# Archive ids (hex) this node agrees to host: `samizdat-node host DIR ARCHIVE_ID`.
hosted_archives = []

# Peers to pull from: `samizdat-node peer add DIR NODE_ID HOST:PORT`.
# Revoked node ids are refused from then on: `samizdat-node peer revoke DIR NODE_ID`.
revoked = []

# Seconds between replication rounds (a push to a peer wakes this node earlier).
sync_interval = 30

# Limit on bytes pulled from peers per second, in MB/s (0 = unlimited).
bandwidth_limit_mb = 0

# Background scrub speed in MB/s (0 = scrub disabled).
scrub_rate_mb = 50

# Seconds from the start of one scrub pass to the start of the next (a pass re-hashes every
# stored chunk; a pass that takes longer is followed at once by the next).
scrub_interval = 86400

# Prometheus metrics endpoint (HTTP), e.g. "127.0.0.1:9101"; empty = disabled.
metrics_listen = ""
"""


@dataclass(frozen=True)
class PeerConfig:
    node_id: str
    address: str
    jurisdiction: str = ""


@dataclass(frozen=True)
class NodeConfig:
    directory: Path
    name: str
    listen: str
    tls: bool
    jurisdiction: str
    data_dir: Path
    hosted_archives: frozenset[ArchiveId]
    peers: tuple[PeerConfig, ...] = ()
    revoked: frozenset[str] = field(default_factory=frozenset)
    sync_interval: float = 30.0
    bandwidth_limit_mb: float = 0.0
    scrub_rate_mb: float = 50.0
    scrub_interval: float = 86400.0
    metrics_listen: str = ""
    pack_mb: int = 32


def config_path(directory: Path) -> Path:
    return directory / CONFIG_FILE


def write_initial_config(directory: Path, name: str, listen: str, jurisdiction: str) -> None:
    text = TEMPLATE.format(
        name=tomlkit.string(name).as_string(),
        listen=tomlkit.string(listen).as_string(),
        jurisdiction=tomlkit.string(jurisdiction).as_string(),
    )
    config_path(directory).write_text(text)


def _load_doc(directory: Path) -> tomlkit.TOMLDocument:
    path = config_path(directory)
    try:
        return tomlkit.parse(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path} not found: create the node with `samizdat-node init`") from None
    except tomlkit.exceptions.ParseError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None


def save_doc(directory: Path, doc: tomlkit.TOMLDocument) -> None:
    """Atomically replace node.toml (a reader never sees a half-written file)."""
    path = config_path(directory)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".node.toml.")
    with os.fdopen(fd, "w") as f:
        f.write(tomlkit.dumps(doc))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def edit_config(directory: Path) -> tomlkit.TOMLDocument:
    doc = _load_doc(directory)
    load_config(directory)  # refuse to edit a file that is already invalid
    return doc


def _get(doc: dict[str, Any], key: str, kind: type, default: Any, where: str) -> Any:
    value = doc.get(key, default)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"{where}: key '{key}' must be a {kind.__name__}, got {value!r}")
    return value


def load_config(directory: Path) -> NodeConfig:
    """Read and validate node.toml; raise ConfigError naming the offending key."""
    doc = _load_doc(directory).unwrap()
    where = str(config_path(directory))
    known = {
        "name",
        "listen",
        "tls",
        "jurisdiction",
        "data_dir",
        "hosted_archives",
        "peer",
        "revoked",
        "sync_interval",
        "bandwidth_limit_mb",
        "scrub_rate_mb",
        "scrub_interval",
        "metrics_listen",
        "pack_mb",
    }
    for key in doc:
        if key not in known:
            raise ConfigError(f"{where}: unknown key '{key}'")
    name = _get(doc, "name", str, "node", where)
    listen = _get(doc, "listen", str, "127.0.0.1:7700", where)
    try:
        host, _ = split_host_port(listen)
    except Exception:
        raise ConfigError(f"{where}: key 'listen' must be HOST:PORT, got {listen!r}") from None
    tls = _get(doc, "tls", bool, True, where)
    if not tls and not is_loopback(host):
        raise ConfigError(
            f"{where}: key 'tls' is false but 'listen' ({listen}) is not loopback; "
            "a node serves plaintext only on 127.0.0.1"
        )
    hosted: set[ArchiveId] = set()
    for item in _get(doc, "hosted_archives", list, [], where):
        try:
            hosted.add(ArchiveId.parse(str(item)))
        except Exception:
            raise ConfigError(f"{where}: key 'hosted_archives' has a bad id {item!r}") from None
    revoked = set()
    for item in _get(doc, "revoked", list, [], where):
        try:
            revoked.add(check_node_id(str(item)))
        except Exception:
            raise ConfigError(f"{where}: key 'revoked' has a bad node id {item!r}") from None
    peers = []
    for i, p in enumerate(_get(doc, "peer", list, [], where)):
        at = f"{where}: [[peer]] #{i + 1}"
        if not isinstance(p, dict):
            raise ConfigError(f"{at} must be a table")
        try:
            node_id = check_node_id(_get(p, "id", str, "", at))
        except ConfigError:
            raise
        except Exception:
            raise ConfigError(f"{at}: key 'id' is not a valid node id") from None
        address = _get(p, "address", str, "", at)
        try:
            split_host_port(address)
        except Exception:
            raise ConfigError(f"{at}: key 'address' must be HOST:PORT, got {address!r}") from None
        if node_id not in revoked:
            peers.append(PeerConfig(node_id, address, _get(p, "jurisdiction", str, "", at)))
    sync_interval = _get(doc, "sync_interval", float, 30.0, where)
    if sync_interval <= 0:
        raise ConfigError(f"{where}: key 'sync_interval' must be positive")
    scrub_rate_mb = _get(doc, "scrub_rate_mb", float, 50.0, where)
    if scrub_rate_mb < 0:
        raise ConfigError(f"{where}: key 'scrub_rate_mb' must be 0 (disabled) or positive")
    scrub_interval = _get(doc, "scrub_interval", float, 86400.0, where)
    if scrub_interval < 0:
        raise ConfigError(f"{where}: key 'scrub_interval' must not be negative")
    pack_mb = _get(doc, "pack_mb", int, 32, where)
    if not 1 <= pack_mb <= 1024:
        raise ConfigError(f"{where}: key 'pack_mb' must be from 1 to 1024")
    return NodeConfig(
        directory=directory,
        name=name,
        listen=listen,
        tls=tls,
        jurisdiction=_get(doc, "jurisdiction", str, "", where),
        data_dir=directory / _get(doc, "data_dir", str, "data", where),
        hosted_archives=frozenset(hosted),
        peers=tuple(peers),
        revoked=frozenset(revoked),
        sync_interval=sync_interval,
        bandwidth_limit_mb=_get(doc, "bandwidth_limit_mb", float, 0.0, where),
        scrub_rate_mb=scrub_rate_mb,
        scrub_interval=scrub_interval,
        metrics_listen=_get(doc, "metrics_listen", str, "", where),
        pack_mb=pack_mb,
    )
