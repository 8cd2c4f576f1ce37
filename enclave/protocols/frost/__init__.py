"""FROST per RFC 9591 for any ciphersuite value, wire-compatible with ZcashFoundation frost.

Suites (values, passed as the first argument `cs` of every function): `ciphersuite.FROST_ED25519`,
`ciphersuite.FROST_SECP256K1`, `taproot.FROST_SECP256K1_TR` (BIP340/BIP341).

Layers (each usable on its own):
- `ciphersuite`: the suites, their context strings, H1..H5 (+ ZF's HDKG, HID), identifiers and
  hooks; `hash_to_field` (RFC 9380, for secp256k1); `taproot` (BIP340 rules, BIP341 tweak).
- `wire`: ZF frost postcard encodings of every message and key package (strict decoding).
- `keys`: KeyPackage / PublicKeyPackage / SecretShare, trusted-dealer key generation.
- `signing`: nonce generation (hedged), commitments, binding factors, signature shares,
  share verification naming the culprit, aggregation. Pure functions, injected randomness.
- `dkg`: Pedersen DKG with ZF frost's proof of knowledge, round-2 shares encrypted to the
  recipient.
- `rounds`: signing and DKG as `Round`s for `enclave.protocols.driver.Driver`.
"""
