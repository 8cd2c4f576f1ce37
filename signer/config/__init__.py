"""The host's configuration: `schema` (the sections, their keys, defaults and checks) and
`loader` (TOML file, MPC_SIGNER_* environment, conversion, cross-checks)."""
