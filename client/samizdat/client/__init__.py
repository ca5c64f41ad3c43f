"""The samizdat CLI: push, list, restore and verify archives, and check replication health."""
