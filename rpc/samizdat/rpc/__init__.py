"""gRPC glue shared by the node and the CLI: addresses, pinned-TLS channels, auth metadata,
error <-> status mapping and message limits. Business logic lives in core/server/client."""
