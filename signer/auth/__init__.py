"""Who may ask: mTLS client identity, service JWTs, and HMACs over protocol messages."""
