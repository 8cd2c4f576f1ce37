"""The trusted component: protocol math, sealing and attestation. Never imports the host."""
