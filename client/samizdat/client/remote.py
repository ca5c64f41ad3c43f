"""Moved to samizdat.rpc.remote (shared by the CLI and by nodes); kept as an alias."""

from samizdat.rpc.remote import NodeClient

__all__ = ["NodeClient"]
