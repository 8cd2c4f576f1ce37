"""Operator tools: subcommands over the store and the enclave, unseal shares, dev credentials, demo."""
