"""samizdat: distributed, deduplicating, end-to-end encrypted archive replication."""

__version__ = "0.1.0"
