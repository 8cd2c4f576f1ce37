"""The gRPC face of the signer: servicer (thin) and convert (validation, message mapping)."""
