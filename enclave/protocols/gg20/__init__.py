"""GG20 threshold ECDSA on secp256k1 with CGGMP21's zero-knowledge proofs.

Each protocol runs as one `enclave.protocols.rounds.Driver` per party and session:

    keygen.start(session_id, self_id, parties, threshold, primes, rng)      -> KeyShare
    presign.start(session_id, share, signers, rng)                          -> Presignature
    sign.start(session_id, share, presig, digest, consume, path=())         -> Signature

Party ids are the Shamir evaluation points (distinct ints in [1, q)). `KeyShare.to_bytes()`
and `Presignature.to_bytes()` are the plaintexts to seal. See each module for the rounds.
"""
