"""The host (untrusted): gRPC server, auth, sessions, sealed-blob storage."""
