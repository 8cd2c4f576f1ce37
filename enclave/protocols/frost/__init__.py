"""FROST(Ed25519, SHA-512) per RFC 9591, wire-compatible with ZcashFoundation frost.

Layers (each usable on its own):
- `ciphersuite`: context string, H1..H5 (+ ZF's HDKG, HID), identifiers.
- `wire`: ZF frost postcard encodings of every message and key package (strict decoding).
- `keys`: KeyPackage / PublicKeyPackage / SecretShare, trusted-dealer key generation.
- `signing`: nonce generation (hedged), commitments, binding factors, signature shares,
  share verification naming the culprit, aggregation. Pure functions, injected randomness.
- `dkg`: Pedersen DKG with ZF frost's proof of knowledge, round-2 shares encrypted to the
  recipient.
- `sessions`: both protocols as `Round`s for `enclave.protocols.rounds.Driver`.
"""
