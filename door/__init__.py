"""The door: what host and enclave share to talk to each other (framing, addresses, handshake,
the frame protocol, its errors). Imports neither `signer` nor `enclave`."""
