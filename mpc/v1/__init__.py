"""Generated from proto/mpc/v1/*.proto by `make proto`; a test fails if these are stale."""
