"""TEE platform adapters: attestation, KMS sealing and its HTTP client, credentials, identity."""
