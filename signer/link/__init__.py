"""The host's half of the link to the enclave: the client and what keeps the enclave in step."""
