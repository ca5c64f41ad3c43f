"""The samizdat node: chunk store, gRPC services, replication, scrub, identity and config."""
