"""Zero-knowledge proofs, one module per relation."""
