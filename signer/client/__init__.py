"""Client SDK: what a caller of mpc-signer runs in its own process."""
