"""Node addresses: `NODE_ID@HOST:PORT` (TLS pinned to NODE_ID) or `HOST:PORT` (plaintext,
loopback only)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from samizdat.core.errors import UsageError
from samizdat.core.ids import check_node_id


def split_host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise UsageError(f"bad address {text!r}: expected HOST:PORT")
    return host, int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class NodeAddress:
    host: str
    port: int
    node_id: str = ""

    @property
    def hostport(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def __str__(self) -> str:
        return f"{self.node_id}@{self.hostport}" if self.node_id else self.hostport

    @property
    def label(self) -> str:
        return f"{self.node_id[:8]}@{self.hostport}" if self.node_id else self.hostport

    @classmethod
    def parse(cls, text: str) -> NodeAddress:
        node_id, sep, rest = text.rpartition("@")
        host, port = split_host_port(rest)
        if sep:
            return cls(host, port, check_node_id(node_id))
        if not is_loopback(host):
            raise UsageError(
                f"{text}: plaintext is allowed only on loopback; use NODE_ID@{text} for TLS"
            )
        return cls(host, port)
