//! The coordinator: task lifecycle, leases and the gRPC service (see the Coordinator issue).
